"""Durable job storage: one SQLite file in WAL mode, behind one small interface.

WAL with synchronous=NORMAL survives a kill -9 of the process (only a power cut may lose the
last transactions), which is the failure this service must ride through.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from imagine.codes import ResultCode
from imagine.errors import DISK_FULL, is_disk_full
from imagine.jobs import Job, JobStatus, check_transition

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    button_message_id TEXT NOT NULL UNIQUE,
    action TEXT NOT NULL,
    type TEXT NOT NULL,
    owner TEXT NOT NULL,
    content TEXT NOT NULL,
    prompt TEXT NOT NULL,
    ref TEXT NOT NULL,
    webhook TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL,
    parent_id TEXT,
    tile INTEGER,
    inputs TEXT NOT NULL,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    attempts INTEGER NOT NULL,
    result TEXT NOT NULL,
    error_code TEXT,
    error TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
CREATE INDEX IF NOT EXISTS jobs_parent ON jobs (parent_id, action);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, status);
CREATE TABLE IF NOT EXISTS webhooks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    url TEXT NOT NULL,
    body BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS webhooks_due ON webhooks (state, next_at);
"""

_ADD_WEBHOOK = "INSERT INTO webhooks (job_id, url, body, next_at) VALUES (?, ?, ?, ?)"

_COLUMNS = (
    "id, button_message_id, action, type, owner, content, prompt, ref, webhook, status, priority,"
    " parent_id, tile, inputs, created_at, started_at, finished_at, attempts, result, error_code,"
    " error"
)
_INSERT_JOBS = f"INSERT INTO jobs ({_COLUMNS}) VALUES ({', '.join('?' * 21)})"
_COUNT_WAITING = "SELECT COUNT(*) FROM jobs WHERE status = 'queued'"
"""Jobs waiting (U1–U4 copies count too: they are queued for milliseconds); the status index
covers it, so it counts index entries and reads no rows."""


Statement = tuple[str, Any, bool]
"""(sql, parameters, executemany?)"""

log = logging.getLogger(__name__)


class StoreError(RuntimeError):
    """The data folder or database cannot be used; the message says what to do."""


class StoreUnavailable(StoreError):
    """A write could not be committed now (a full disk, a locked or failing database); it may
    work later. The message is a sentence for the operator and the user."""

    def __init__(self, message: str, *, disk_full: bool = False) -> None:
        super().__init__(message)
        self.disk_full = disk_full

    @classmethod
    def from_error(cls, exc: BaseException) -> StoreUnavailable:
        """The sentence for a failed write: a full disk says so, anything else names the error."""
        if is_disk_full(exc):
            return cls(
                f"{DISK_FULL}, so the job database cannot be written; the server's operator "
                "must free some space.",
                disk_full=True,
            )
        return cls(f"The job database cannot be written right now ({exc}).")


@dataclass(frozen=True)
class Quota:
    """What one submission may take, checked in the very transaction that inserts its jobs, so
    a burst of requests (from one process or many sharing the database) cannot overshoot."""

    owner: str
    owner_cap: int | None
    """Unfinished jobs ``owner`` may have once these are added; None = no cap."""
    queue_limit: int | None
    """Jobs that may wait for the engine once these are added; None = no limit."""
    waiting: int
    """How many of the new jobs wait for the engine (U1–U4 do not)."""

    def refused(self, adding: int, unfinished: int, waiting: int) -> LimitReached | None:
        """Why ``adding`` jobs may not join ``unfinished`` ones of the owner and ``waiting`` ones
        in the queue, or None when they may."""
        if self.owner_cap is not None and unfinished + adding > self.owner_cap:
            return LimitReached("user", unfinished, self.owner_cap)
        if (
            self.queue_limit is not None
            and self.waiting
            and waiting + self.waiting > self.queue_limit
        ):
            return LimitReached("queue", waiting, self.queue_limit)
        return None


class LimitReached(Exception):
    """A :class:`Quota` does not allow the jobs: ``kind`` is "user" or "queue"."""

    def __init__(self, kind: str, current: int, limit: int) -> None:
        super().__init__(f"{kind} limit {limit} reached ({current})")
        self.kind, self.current, self.limit = kind, current, limit


@dataclass
class _Unit:
    statements: list[Statement]
    quota: Quota | None = None
    adding: int = 0


def _ts(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).astimezone(UTC)


def _row_to_job(row: sqlite3.Row | tuple[Any, ...]) -> Job:
    (
        id_,
        bmid,
        action,
        type_,
        owner,
        content,
        prompt,
        ref,
        webhook,
        status,
        priority,
        parent_id,
        tile,
        inputs,
        created,
        started,
        finished,
        attempts,
        result,
        error_code,
        error,
    ) = row
    created_at = _dt(created)
    assert created_at is not None
    return Job(
        id=id_,
        button_message_id=bmid,
        action=action,
        type=type_,
        owner=owner,
        content=content,
        prompt=json.loads(prompt),
        ref=ref,
        webhook=webhook,
        status=JobStatus(status),
        priority=priority,
        parent_id=parent_id,
        tile=tile,
        inputs=json.loads(inputs),
        created_at=created_at,
        started_at=_dt(started),
        finished_at=_dt(finished),
        attempts=attempts,
        result=json.loads(result),
        error_code=ResultCode(error_code) if error_code else None,
        error=error,
    )


def _job_values(job: Job) -> tuple[Any, ...]:
    return (
        job.id,
        job.button_message_id,
        job.action,
        job.type,
        job.owner,
        job.content,
        json.dumps(job.prompt),
        job.ref,
        job.webhook,
        job.status.value,
        job.priority,
        job.parent_id,
        job.tile,
        json.dumps(job.inputs),
        _ts(job.created_at),
        _ts(job.started_at),
        _ts(job.finished_at),
        job.attempts,
        json.dumps(job.result),
        job.error_code.value if job.error_code else None,
        job.error,
    )


class JobStore:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        # Group commit: writes that arrive while a transaction is being committed wait and go
        # together in the next one. One connection, one writer: no coroutine ever sees another's
        # half-done transaction, and a burst of submissions costs one commit, not one each.
        self._pending: list[tuple[_Unit, asyncio.Future[list[int]]]] = []
        self._flusher: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: Path) -> JobStore:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(path)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"Cannot open the job database at {path}: {exc}.") from exc
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA busy_timeout=5000")
            check = await db.execute_fetchall("PRAGMA quick_check")
            if list(check) != [("ok",)]:
                raise sqlite3.DatabaseError(f"integrity check failed: {list(check)[:3]}")
            await db.executescript(_SCHEMA)
            await db.commit()
        except sqlite3.Error as exc:
            await db.close()
            raise StoreError(
                f"The job database at {path} cannot be used ({exc}). If the file is damaged, "
                "move it aside (keep it for recovery) and start again; if the folder is read-only "
                "or full, fix that first."
            ) from exc
        return cls(db)

    async def close(self) -> None:
        if self._flusher is not None:
            await self._flusher
        await self._db.close()

    async def _commit(self, sql: str, params: Any, *, many: bool = False) -> int:
        """Run one write statement in the next group transaction; the number of rows it changed."""
        return (await self._commit_unit([(sql, params, many)]))[0]

    async def _commit_unit(self, unit: list[Statement] | _Unit) -> list[int]:
        """Statements that commit together or not at all; the rows each changed. A failed commit
        raises :class:`StoreUnavailable`; a unit whose quota does not allow it, :class:`LimitReached`."""
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._pending.append((unit if isinstance(unit, _Unit) else _Unit(unit), future))
        if self._flusher is None or self._flusher.done():
            # its own task: a caller cancelled mid-commit must not strand the others' writes
            self._flusher = asyncio.create_task(self._drain())
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._flush(batch)
            except Exception:
                # One unit spoiled the shared transaction: give each its own, so only it fails.
                log.warning(
                    "a group commit of %d writes failed; writing them one by one", len(batch)
                )
                for unit in batch:
                    await self._flush([unit])
            finally:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(
                            StoreUnavailable("The job database could not commit this write.")
                        )

    async def _tallies(self, quotas: list[Quota]) -> tuple[dict[str, int], int]:
        """Unfinished jobs per capped owner, and jobs waiting for the engine, as of now: one
        query for a burst (both counts are read from covering indexes)."""
        owners = sorted({q.owner for q in quotas if q.owner_cap is not None})
        per_owner: dict[str, int] = dict.fromkeys(owners, 0)
        waiting = 0
        wants_waiting = any(q.queue_limit is not None for q in quotas)
        for start in range(0, max(len(owners), 1), 500):  # SQLite's limit on bound parameters
            chunk = owners[start : start + 500]
            parts, args = [], list(chunk)
            if chunk:
                parts.append(
                    "SELECT owner, COUNT(*) FROM jobs WHERE status IN ('queued', 'running')"
                    f" AND owner IN ({', '.join('?' * len(chunk))}) GROUP BY owner"
                )
            if wants_waiting and start == 0:
                parts.append(f"SELECT NULL, ({_COUNT_WAITING})")
            if not parts:
                break
            for owner, count in await self._db.execute_fetchall(" UNION ALL ".join(parts), args):
                if owner is None:
                    waiting = int(count)
                else:
                    per_owner[str(owner)] = int(count)
        return per_owner, waiting

    async def _flush(self, batch: list[tuple[_Unit, asyncio.Future[list[int]]]]) -> None:
        results: list[list[int] | LimitReached] = []
        try:
            # The write lock first: the counts a quota is checked against then hold for every
            # process on this database file until the commit.
            await self._db.execute("BEGIN IMMEDIATE")
            quotas = [unit.quota for unit, _ in batch if unit.quota is not None]
            per_owner, waiting = await self._tallies(quotas) if quotas else ({}, 0)
            # Each call is a hop to aiosqlite's thread, so a run of job inserts (a burst of
            # submissions) goes as one executemany; every other statement keeps its own row count.
            inserts: list[Any] = []
            for unit, _ in batch:
                if unit.quota is not None:
                    unfinished = per_owner.get(unit.quota.owner, 0)
                    refused = unit.quota.refused(unit.adding, unfinished, waiting)
                    if refused is not None:
                        results.append(refused)
                        continue
                    if unit.quota.owner_cap is not None:
                        per_owner[unit.quota.owner] += unit.adding
                    waiting += unit.quota.waiting
                counts = []
                for sql, params, many in unit.statements:
                    if sql == _INSERT_JOBS:
                        inserts.extend(params)
                        counts.append(len(params))
                        continue
                    if inserts:
                        await self._db.executemany(_INSERT_JOBS, inserts)
                        inserts = []
                    run = self._db.executemany if many else self._db.execute
                    counts.append(int((await run(sql, params)).rowcount))
                results.append(counts)
            if inserts:
                await self._db.executemany(_INSERT_JOBS, inserts)
            await self._db.commit()
        except Exception as exc:
            with contextlib.suppress(Exception):
                await self._db.rollback()
            if len(batch) > 1:
                raise
            log.error("a write to the job database failed: %s", exc)
            batch[0][1].set_exception(StoreUnavailable.from_error(exc))
            return
        for (_, future), outcome in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(outcome, LimitReached):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    async def add(self, jobs: list[Job], quota: Quota | None = None) -> None:
        """Insert ``jobs`` together; with a ``quota``, only if it allows them (else LimitReached)."""
        statement: Statement = (_INSERT_JOBS, [_job_values(job) for job in jobs], True)
        await self._commit_unit(_Unit([statement], quota, len(jobs)))

    async def count_waiting(self) -> int:
        """Jobs waiting for a worker."""
        rows = list(await self._db.execute_fetchall(_COUNT_WAITING))
        return int(rows[0][0])

    async def _one(self, where: str, *args: Any) -> Job | None:
        rows = list(
            await self._db.execute_fetchall(f"SELECT {_COLUMNS} FROM jobs WHERE {where}", args)
        )
        return _row_to_job(rows[0]) if rows else None

    async def get(self, job_id: str) -> Job | None:
        return await self._one("id = ?", job_id)

    async def by_button_message_id(self, button_message_id: str) -> Job | None:
        return await self._one("button_message_id = ?", button_message_id)

    async def pressed(self, parent_id: str, action: str) -> Job | None:
        """The job a press of ``action`` on ``parent_id`` made earlier, unless that one failed."""
        return await self._one(
            "parent_id = ? AND action = ? AND status != 'failed' ORDER BY rowid LIMIT 1",
            parent_id,
            action,
        )

    async def save(
        self, job: Job, previous: JobStatus, webhook: tuple[str, bytes, float] | None = None
    ) -> None:
        """Write ``job`` whose status moved from ``previous`` (checked) in one transaction, with
        the webhook delivery (url, body, due time) it owes, so a crash cannot keep one without the other."""
        check_transition(previous, job.status)
        unit: list[Statement] = [(
            f"UPDATE jobs SET ({_COLUMNS}) = ({', '.join('?' * 21)}) WHERE id = ? AND status = ?",
            (*_job_values(job), job.id, previous.value), False,
        )]  # fmt: skip
        if webhook is not None:
            url, body, due = webhook
            unit.append((_ADD_WEBHOOK, (job.id, url, body, due), False))
        changed = (await self._commit_unit(unit))[0]
        if changed != 1:
            raise RuntimeError(f"job {job.id} was not {previous}; not saved")

    async def unfinished(self) -> list[Job]:
        rows = await self._db.execute_fetchall(
            f"SELECT {_COLUMNS} FROM jobs WHERE status IN ('queued', 'running') ORDER BY rowid"
        )
        return [_row_to_job(row) for row in rows]

    async def count_unfinished(self, owner: str) -> int:
        rows = list(
            await self._db.execute_fetchall(
                "SELECT COUNT(*) FROM jobs WHERE owner = ? AND status IN ('queued', 'running')",
                (owner,),
            )
        )
        return int(rows[0][0])

    # webhooks: a durable outbox, so a restart does not drop a delivery

    async def due_webhooks(
        self, now: float, limit: int = 20
    ) -> list[tuple[int, str, str, bytes, int]]:
        rows = await self._db.execute_fetchall(
            "SELECT id, job_id, url, body, attempts FROM webhooks WHERE state = 'pending' AND next_at <= ?"
            " ORDER BY next_at LIMIT ?",
            (now, limit),
        )
        return [(int(r[0]), str(r[1]), str(r[2]), bytes(r[3]), int(r[4])) for r in rows]

    async def next_webhook_at(self) -> float | None:
        rows = list(
            await self._db.execute_fetchall(
                "SELECT MIN(next_at) FROM webhooks WHERE state = 'pending'"
            )
        )
        return None if rows[0][0] is None else float(rows[0][0])

    async def update_webhook(
        self, webhook_id: int, *, state: str, attempts: int, next_at: float, error: str
    ) -> None:
        await self._commit(
            "UPDATE webhooks SET state = ?, attempts = ?, next_at = ?, last_error = ? WHERE id = ?",
            (state, attempts, next_at, error, webhook_id),
        )
