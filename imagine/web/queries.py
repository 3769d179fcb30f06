"""What the pages read from the job database: a member's gallery and the operator's overview.
Read-only SQL through the store's own connection (``?`` placeholders in both dialects); the one
write, a gallery delete, is a unit the store commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from imagine.jobs import Job, utcnow
from imagine.store import JobStore, WorkerBeat
from imagine.store.base import COLUMNS, row_to_job, ts

PAGE_SIZE = 24
NO_IMAGES = "('describe', 'shorten')"
WORKER_WINDOW = 120.0
"""Seconds since its last heartbeat a worker is still shown."""


@dataclass(frozen=True)
class GalleryQuery:
    text: str = ""
    since: date | None = None
    until: date | None = None
    page: int = 1


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def gallery(store: JobStore, owner: str, query: GalleryQuery) -> tuple[list[Job], bool]:
    """One page of ``owner``'s finished images, newest first, and whether there is a next."""
    where = [f"owner = ? AND status = 'done' AND action NOT IN {NO_IMAGES}"]
    args: list[Any] = [owner]
    if query.text:
        where.append("LOWER(content) LIKE ? ESCAPE '\\'")
        args.append(_like(query.text))
    if query.since:
        where.append("created_at >= ?")
        args.append(query.since.isoformat())
    if query.until:
        where.append("created_at < ?")
        args.append((query.until + timedelta(days=1)).isoformat())
    offset = (query.page - 1) * PAGE_SIZE
    rows = await store.fetch(
        f"SELECT {COLUMNS} FROM jobs WHERE {' AND '.join(where)}"
        f" ORDER BY {store.seq} DESC LIMIT ? OFFSET ?",
        (*args, PAGE_SIZE + 1, offset),
    )
    jobs = [row_to_job(row) for row in rows]
    return jobs[:PAGE_SIZE], len(jobs) > PAGE_SIZE


async def own_job(store: JobStore, owner: str, job_id: str) -> Job | None:
    rows = await store.fetch(
        f"SELECT {COLUMNS} FROM jobs WHERE id = ? AND owner = ?", (job_id, owner)
    )
    return row_to_job(rows[0]) if rows else None


async def by_button(store: JobStore, button_message_id: str) -> Job | None:
    return await store.by_button_message_id(button_message_id)


@dataclass(frozen=True)
class Overview:
    waiting: int
    running: list[tuple[str, Job]]
    """(the worker that renders it, the job)"""
    queued: list[Job]
    per_user: list[tuple[str, int, int]]
    """(owner, waiting, running)"""
    workers: list[WorkerBeat]
    last_hour: dict[str, int]
    failures: list[Job]
    outbox: dict[str, int]
    deliveries: list[tuple[int, str, str, int, str, str]]
    """(id, job id, host, attempts, state, last error) of deliveries not yet delivered."""


async def overview(store: JobStore) -> Overview:
    def jobs(rows: list[tuple[Any, ...]]) -> list[Job]:
        return [row_to_job(row) for row in rows]

    rendering = await store.fetch(
        f"SELECT worker, {COLUMNS} FROM jobs WHERE status = 'running' ORDER BY {store.seq} LIMIT 100"
    )
    running = [(str(row[0]), row_to_job(row[1:])) for row in rendering]
    queued = jobs(await store.fetch(
        f"SELECT {COLUMNS} FROM jobs WHERE status = 'queued' ORDER BY {store.seq} LIMIT 50"
    ))  # fmt: skip
    per: dict[str, list[int]] = {}
    for owner, status, count in await store.fetch(
        "SELECT owner, status, COUNT(*) FROM jobs WHERE status IN ('queued', 'running')"
        " GROUP BY owner, status"
    ):
        per.setdefault(str(owner), [0, 0])[0 if status == "queued" else 1] += int(count)
    hour = ts(utcnow() - timedelta(hours=1))
    last_hour = {
        str(status): int(count)
        for status, count in await store.fetch(
            "SELECT status, COUNT(*) FROM jobs WHERE created_at >= ? GROUP BY status", (hour,)
        )
    }
    failures = jobs(await store.fetch(
        f"SELECT {COLUMNS} FROM jobs WHERE status = 'failed' ORDER BY {store.seq} DESC LIMIT 20"
    ))  # fmt: skip
    outbox = {
        str(state): int(count)
        for state, count in await store.fetch("SELECT state, COUNT(*) FROM webhooks GROUP BY state")
    }
    deliveries = [
        (int(i), str(job), _host(str(url)), int(attempts), str(state), str(error)[:200])
        for i, job, url, attempts, state, error in await store.fetch(
            "SELECT id, job_id, url, attempts, state, last_error FROM webhooks"
            " WHERE state != 'delivered' ORDER BY id DESC LIMIT 20"
        )
    ]
    return Overview(
        waiting=sum(w for w, _ in per.values()),
        running=running,
        queued=queued,
        per_user=sorted(((o, w, r) for o, (w, r) in per.items()), key=lambda x: -x[1] - x[2]),
        workers=await store.workers(WORKER_WINDOW),
        last_hour=last_hour,
        failures=failures,
        outbox=outbox,
        deliveries=deliveries,
    )


def _host(url: str) -> str:
    """A webhook URL's host only: its path or query may carry the receiver's secret."""
    from urllib.parse import urlsplit

    return urlsplit(url).netloc or "?"


async def inbox(store: JobStore, scope: str, after: int) -> list[tuple[int, Job]]:
    """Jobs the editor made for this API token after ``after`` (the store's sequence)."""
    rows = await store.fetch(
        f"SELECT {store.seq}, {COLUMNS} FROM jobs WHERE {store.seq} > ? AND owner LIKE ?"
        f" AND ref LIKE ? ORDER BY {store.seq} LIMIT 100",
        (after, f"{scope}:%", '%"via": "web"%'),
    )
    return [(int(row[0]), row_to_job(row[1:])) for row in rows]


async def last_seq(store: JobStore) -> int:
    rows = await store.fetch(f"SELECT COALESCE(MAX({store.seq}), 0) FROM jobs")
    return int(rows[0][0])
