"""What every job store shares: the errors, the quota a submission is checked against, the row
shapes, and the write units the two databases commit (SQLite in one file, PostgreSQL shared).

A write is a :class:`Unit`: job rows to insert (only if its :class:`Quota` allows them) and a
piece of work that runs in the same transaction through a :class:`Tx`. The backends differ only
in how they serialise units (SQLite's write lock; PostgreSQL's advisory lock) and in dialect.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from imagine.codes import ResultCode
from imagine.errors import DISK_FULL, is_disk_full
from imagine.jobs import Job, JobStatus


class StoreError(RuntimeError):
    """The data folder or database cannot be used; the message says what to do."""


class StoreUnavailable(StoreError):
    """A read or write could not be done now (a full disk, a database that is down or locked);
    it may work later. The message is a sentence for the operator and the user."""

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


class AlreadyExists(StoreError):
    """An insert would make a second row where only one may be (one U1 per grid, say)."""


class SchemaError(StoreError):
    """The database's schema is not the one this version runs on; the message says what to do."""


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


class Tx(Protocol):
    """One open write transaction; ``?`` placeholders in both dialects."""

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


Work = Callable[[Tx], Awaitable[Any]]


@dataclass
class Unit:
    """Writes that commit together or not at all."""

    work: Work | None = None
    """Runs in the transaction; it may await its :class:`Tx` and nothing else (SQLite runs it on
    the database's thread, to its end, in the same call as the commit)."""
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    """Job rows to insert (INSERT_JOBS), only if ``quota`` allows them."""
    quota: Quota | None = None


@dataclass(frozen=True)
class Lease:
    """A worker's hold on a running job: writes with another token (or none) are refused."""

    token: str
    worker: str


@dataclass(frozen=True)
class WorkerBeat:
    """A worker process's last heartbeat, for /v2/info and the operators."""

    id: str
    host: str
    engine: str
    device: str
    job_id: str | None
    started_at: float
    heartbeat_at: float = 0.0
    """Set by the database's clock when written."""
    capabilities: str = ""
    """The engine's capabilities as JSON (:func:`imagine.engines.base.capabilities_json`)."""


JOB_FIELDS = (
    "id", "button_message_id", "action", "type", "owner", "content", "prompt", "ref", "webhook",
    "status", "priority", "parent_id", "tile", "inputs", "created_at", "started_at",
    "finished_at", "attempts", "result", "error_code", "error", "progress", "preview",
    "contract",
)  # fmt: skip
COLUMNS = ", ".join(JOB_FIELDS)
INSERT_JOBS = f"INSERT INTO jobs ({COLUMNS}) VALUES ({', '.join('?' * len(JOB_FIELDS))})"
UPDATE_JOB = (
    f"UPDATE jobs SET ({COLUMNS}, lease, lease_until, worker) ="
    f" ({', '.join('?' * (len(JOB_FIELDS) + 3))}) WHERE id = ? AND status = ?"
)
COUNT_WAITING = "SELECT COUNT(*) FROM jobs WHERE status = 'queued'"
"""Jobs waiting (U1–U4 copies count too: they are queued for milliseconds); the status index
covers it, so it counts index entries and reads no rows."""
ADD_WEBHOOK = "INSERT INTO webhooks (job_id, url, body, next_at) VALUES (?, ?, ?, {now} + ?)"
"""A delivery, due ``?`` seconds from now by the database's clock."""
TILE_BUTTONS = "('U1', 'U2', 'U3', 'U4')"


def ts(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).astimezone(UTC)


def row_to_job(row: Sequence[Any]) -> Job:
    values = dict(zip(JOB_FIELDS, row, strict=True))
    created_at = dt(values["created_at"])
    assert created_at is not None
    return Job(
        **{
            **values,
            "prompt": json.loads(values["prompt"]),
            "status": JobStatus(values["status"]),
            "inputs": json.loads(values["inputs"]),
            "created_at": created_at,
            "started_at": dt(values["started_at"]),
            "finished_at": dt(values["finished_at"]),
            "result": json.loads(values["result"]),
            "error_code": ResultCode(values["error_code"]) if values["error_code"] else None,
            "progress": float(values["progress"] or 0.0),
            "contract": values["contract"] or "v2",
        }
    )


def job_values(job: Job) -> tuple[Any, ...]:
    return (
        job.id, job.button_message_id, job.action, job.type, job.owner, job.content,
        json.dumps(job.prompt), job.ref, job.webhook, job.status.value, job.priority,
        job.parent_id, job.tile, json.dumps(job.inputs), ts(job.created_at), ts(job.started_at),
        ts(job.finished_at), job.attempts, json.dumps(job.result),
        job.error_code.value if job.error_code else None, job.error, job.progress, job.preview,
        job.contract,
    )  # fmt: skip
