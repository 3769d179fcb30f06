"""The job store's operations, written once in SQL both databases speak.

Each backend (:mod:`imagine.store.sqlite`, :mod:`imagine.store.postgres`) supplies a
connection, a way to commit a :class:`Unit`, and two dialect words: the column that orders jobs
by arrival (``seq``) and the row-lock clause of a claim.
"""

from __future__ import annotations

import abc
import asyncio
import os
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from imagine.jobs import Job, JobStatus, check_transition, utcnow
from imagine.store.base import (
    ADD_WEBHOOK,
    COLUMNS,
    COUNT_WAITING,
    UPDATE_JOB,
    Lease,
    LimitReached,
    Quota,
    Tx,
    Unit,
    WorkerBeat,
    job_values,
    row_to_job,
    ts,
)


def _host() -> str:
    """This machine's name, and its PID namespace where there is one: two containers that share
    a host name (``network_mode: host``, a fixed ``hostname:``) must not judge each other's pids."""
    try:
        namespace = os.readlink("/proc/self/ns/pid").removeprefix("pid:").strip("[]")
    except OSError:
        return socket.gethostname()
    return f"{socket.gethostname()}#{namespace}"


HOST = _host()
LIVE_MARKS: set[str] = set()
"""The marks of this process's running worker pools (a restarted container keeps its host name
and its pid, so the pid alone cannot tell an earlier life from this one)."""


def new_mark() -> str:
    mark = secrets.token_hex(4)
    LIVE_MARKS.add(mark)
    return mark


def worker_name(number: int, mark: str) -> str:
    """``host:pid:mark:number``: who holds a lease, and whether it can still be alive."""
    return f"{HOST}:{os.getpid()}:{mark}:{number}"


def holder_is_dead(worker: str) -> bool:
    """Whether the worker named ``worker`` is known to be gone: on this host, with a pid that no
    longer runs, or in this process with a pool that is closed (or of an earlier life of this
    container). A holder on another host is never known dead: its lease has to run out."""
    parts = worker.split(":")
    if len(parts) != 4 or parts[0] != HOST or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return parts[2] not in LIVE_MARKS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's live process
        return False
    return False


class Fenced(RuntimeError):
    """The job is no longer what the writer thinks (another worker took it, or it moved on)."""


class JobStore(abc.ABC):
    seq = "rowid"
    """The column that orders jobs by arrival."""
    claim_lock = ""
    """What a claim's SELECT ends with to lock the row it takes (PostgreSQL: skip locked ones)."""
    now = "((julianday('now') - 2440587.5) * 86400.0)"
    """The database's clock in Unix seconds: leases are set and judged by one clock, so the
    clocks of the machines the workers run on need not agree."""

    # what a backend provides

    @abc.abstractmethod
    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A read, outside any write transaction."""

    @abc.abstractmethod
    async def commit(self, unit: Unit) -> Any:
        """Commit ``unit`` (its rows only if its quota allows them, else LimitReached); what its
        work returned. A failed commit raises StoreUnavailable (AlreadyExists for a duplicate)."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def watch(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` whenever another process adds jobs, until cancelled; without a way to
        hear of them (SQLite), workers look every few seconds (workers.POLL) instead."""
        del wake
        await asyncio.Event().wait()

    async def notify(self, tx: Tx) -> None:
        """Within a transaction that added jobs: tell other processes' workers, at commit."""
        del tx

    # shared by the backends' commits

    @staticmethod
    async def tallies(tx: Tx, quotas: list[Quota]) -> tuple[dict[str, int], int]:
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
                parts.append(f"SELECT NULL, ({COUNT_WAITING})")
            if not parts:
                break
            for owner, count in await tx.fetch(" UNION ALL ".join(parts), args):
                if owner is None:
                    waiting = int(count)
                else:
                    per_owner[str(owner)] = int(count)
        return per_owner, waiting

    @staticmethod
    def admit(
        units: Sequence[Unit], per_owner: dict[str, int], waiting: int
    ) -> list[LimitReached | None]:
        """Each unit's refusal (None = admitted), in order, counting the admitted ones."""
        outcomes: list[LimitReached | None] = []
        for unit in units:
            quota = unit.quota
            if quota is None:
                outcomes.append(None)
                continue
            refused = quota.refused(len(unit.rows), per_owner.get(quota.owner, 0), waiting)
            if refused is None:
                if quota.owner_cap is not None:
                    per_owner[quota.owner] = per_owner.get(quota.owner, 0) + len(unit.rows)
                waiting += quota.waiting
            outcomes.append(refused)
        return outcomes

    # jobs

    async def add(self, jobs: list[Job], quota: Quota | None = None) -> None:
        """Insert ``jobs`` together; with a ``quota``, only if it allows them (else LimitReached)."""
        await self.commit(Unit(self.notify, [job_values(job) for job in jobs], quota))

    async def _count(self, sql: str, *args: Any) -> int:
        return int((await self.fetch(sql, args))[0][0])

    async def count_waiting(self) -> int:
        """Jobs waiting for a worker."""
        return await self._count(COUNT_WAITING)

    async def count_running(self) -> int:
        return await self._count("SELECT COUNT(*) FROM jobs WHERE status = 'running'")

    async def count_unfinished(self, owner: str) -> int:
        return await self._count(
            "SELECT COUNT(*) FROM jobs WHERE owner = ? AND status IN ('queued', 'running')", owner
        )

    async def _one(self, where: str, *args: Any) -> Job | None:
        rows = await self.fetch(f"SELECT {COLUMNS} FROM jobs WHERE {where}", args)
        return row_to_job(rows[0]) if rows else None

    async def get(self, job_id: str) -> Job | None:
        return await self._one("id = ?", job_id)

    async def by_button_message_id(self, button_message_id: str) -> Job | None:
        return await self._one("button_message_id = ?", button_message_id)

    async def pressed(self, parent_id: str, action: str) -> Job | None:
        """The job a press of ``action`` on ``parent_id`` made earlier, unless that one failed."""
        return await self._one(
            f"parent_id = ? AND action = ? AND status != 'failed' ORDER BY {self.seq} LIMIT 1",
            parent_id,
            action,
        )

    async def unfinished(self) -> list[Job]:
        rows = await self.fetch(
            f"SELECT {COLUMNS} FROM jobs WHERE status IN ('queued', 'running') ORDER BY {self.seq}"
        )
        return [row_to_job(row) for row in rows]

    async def save(
        self,
        job: Job,
        previous: JobStatus,
        webhook: tuple[str, bytes, float] | None = None,
        lease: Lease | None = None,
    ) -> None:
        """Write ``job`` whose status moved from ``previous`` (checked) in one transaction, with
        the webhook delivery (url, body, due time) it owes, so a crash cannot keep one without
        the other. With a ``lease``, only while that lease still holds the job (else
        :class:`Fenced`); a finished or requeued job keeps no lease."""
        check_transition(previous, job.status)
        holds = job.status is JobStatus.RUNNING and lease is not None
        values = (
            *job_values(job),
            lease.token if holds and lease else None,
            None,
            lease.worker if holds and lease else "",
        )
        sql, args = UPDATE_JOB, [*values, job.id, previous.value]
        if lease is not None:
            sql, args = f"{sql} AND lease = ?", [*args, lease.token]
        elif previous is JobStatus.RUNNING:  # only a job nobody holds (a row from before leases)
            sql = f"{sql} AND lease IS NULL"

        async def write(tx: Tx) -> int:
            changed = await tx.execute(sql, args)
            if changed == 1 and webhook is not None:
                url, body, due = webhook
                await tx.execute(ADD_WEBHOOK, (job.id, url, body, due))
            if changed == 1 and job.status is JobStatus.QUEUED:
                await self.notify(tx)
            return changed

        if await self.commit(Unit(write)) != 1:
            raise Fenced(f"job {job.id} was not {previous} under this lease; not saved")

    # the queue: claims with leases, fair across owners (mirrored by imagine.fairqueue)

    def _heads(self) -> str:
        """Each owner's oldest queued job per tier, with the turn order's sort keys."""
        return f"""
            WITH heads AS (
                SELECT id, owner, priority, seq FROM (
                    SELECT id, owner, priority, {self.seq} AS seq, ROW_NUMBER() OVER (
                        PARTITION BY owner, priority ORDER BY {self.seq}) AS n
                    FROM jobs WHERE status = 'queued'
                ) AS q WHERE n = 1
            )"""

    _TURN_ORDER = """
        ORDER BY h.priority,
            CASE WHEN COALESCE(t.served_seq, 0) >= h.seq THEN t.served_seq ELSE h.seq END,
            CASE WHEN COALESCE(t.served_seq, 0) >= h.seq THEN 1 ELSE 0 END,
            CASE WHEN COALESCE(t.served_seq, 0) >= h.seq THEN t.served_at ELSE 0 END,
            h.seq"""
    """Users take turns: an owner served goes behind every job that existed then (served_seq);
    one who joins later queues at their first job. Mirrored by :func:`fairqueue.claim_order`."""

    async def claim(
        self, worker: str, lease_seconds: float, job_id: str | None = None
    ) -> tuple[Job, Lease] | None:
        """Take the next job by the turn order (or ``job_id``) for ``worker``: it is running
        under a new lease until ``lease_seconds`` from now unless renewed; None = nothing queued."""
        if job_id is None:
            pick = (
                f"{self._heads()} SELECT j.id FROM jobs j JOIN heads h ON h.id = j.id"
                " LEFT JOIN turns t ON t.owner = h.owner WHERE j.status = 'queued'"
                f" {self._TURN_ORDER} LIMIT 1{self.claim_lock}"
            )
            pick_args: tuple[Any, ...] = ()
        else:
            pick = (
                f"SELECT j.id FROM jobs j WHERE j.id = ? AND j.status = 'queued'{self.claim_lock}"
            )
            pick_args = (job_id,)
        token = secrets.token_hex(12)

        async def take(tx: Tx) -> tuple[Job, Lease] | None:
            picked = await tx.fetch(pick, pick_args)
            if not picked:
                return None
            chosen = str(picked[0][0])
            now = time.time()
            changed = await tx.execute(
                "UPDATE jobs SET status = 'running', started_at = ?, attempts = attempts + 1,"
                f" lease = ?, lease_until = {self.now} + ?, worker = ?, progress = 0,"
                " preview = NULL WHERE id = ? AND status = 'queued'",
                (ts(utcnow()), token, float(lease_seconds), worker, chosen),
            )
            if changed != 1:
                return None
            await tx.execute(
                "INSERT INTO turns (owner, served_seq, served_at) SELECT owner,"
                f" (SELECT COALESCE(MAX({self.seq}), 0) FROM jobs), ? FROM jobs WHERE id = ?"
                " ON CONFLICT (owner) DO UPDATE SET served_seq = excluded.served_seq,"
                " served_at = excluded.served_at",
                (now, chosen),
            )
            rows = await tx.fetch(f"SELECT {COLUMNS} FROM jobs WHERE id = ?", (chosen,))
            return row_to_job(rows[0]), Lease(token, worker)

        if job_id is None and not await self.fetch(
            "SELECT 1 FROM jobs WHERE status = 'queued' LIMIT 1"
        ):
            return None  # an idle worker's look costs a read, not a write transaction
        result: tuple[Job, Lease] | None = await self.commit(Unit(take))
        return result

    async def renew(
        self, job_id: str, lease: Lease, lease_seconds: float, progress: float, preview: str | None
    ) -> bool:
        """Extend ``lease`` and publish the job's progress; False = the lease is lost."""

        async def extend(tx: Tx) -> int:
            return await tx.execute(
                f"UPDATE jobs SET lease_until = {self.now} + ?, progress = ?, preview = ?"
                " WHERE id = ? AND status = 'running' AND lease = ?",
                (float(lease_seconds), float(progress), preview, job_id, lease.token),
            )

        return bool(await self.commit(Unit(extend)) == 1)

    async def abandoned(self) -> list[tuple[Job, Lease | None]]:
        """Running jobs nobody holds any more: their lease ran out, or the process holding it on
        this host is gone (so a restart resumes its jobs at once, not a lease later)."""
        expired = f"(lease_until IS NULL OR lease_until < {self.now})"
        rows = await self.fetch(
            f"SELECT {COLUMNS}, lease, worker, CASE WHEN {expired} THEN 1 ELSE 0 END FROM jobs"
            f" WHERE status = 'running' AND ({expired} OR worker LIKE ?)",
            (f"{HOST}:%",),
        )
        found = []
        for row in rows:
            *fields, token, worker, ran_out = row
            if ran_out or holder_is_dead(str(worker)):
                found.append((row_to_job(fields), Lease(token, worker) if token else None))
        return found

    async def queue_snapshot(
        self,
    ) -> tuple[list[tuple[str, str, int, int]], dict[str, tuple[int, float]], int]:
        """What the turn order is computed from: queued (id, owner, priority, seq), each owner's
        last turn (served_seq, served_at), and the newest seq."""
        queued = await self.fetch(
            f"SELECT id, owner, priority, {self.seq} FROM jobs WHERE status = 'queued'"
            f" ORDER BY {self.seq}"
        )
        turns = await self.fetch(
            "SELECT t.owner, t.served_seq, t.served_at FROM turns t WHERE t.owner IN"
            " (SELECT owner FROM jobs WHERE status = 'queued')"
        )
        top = await self._count(f"SELECT COALESCE(MAX({self.seq}), 0) FROM jobs")
        return (
            [(str(i), str(o), int(p), int(s)) for i, o, p, s in queued],
            {str(o): (int(s), float(a)) for o, s, a in turns},
            top,
        )

    # workers' heartbeats

    async def beat(self, beat: WorkerBeat) -> None:
        async def write(tx: Tx) -> None:
            await tx.execute(
                "INSERT INTO workers (id, host, engine, device, job_id, started_at, heartbeat_at,"
                " capabilities) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " job_id = excluded.job_id, heartbeat_at = excluded.heartbeat_at,"
                " capabilities = excluded.capabilities",
                (beat.id, beat.host, beat.engine, beat.device, beat.job_id, beat.started_at,
                 beat.heartbeat_at, beat.capabilities),
            )  # fmt: skip

        await self.commit(Unit(write))

    async def forget_worker(self, worker: str) -> None:
        async def write(tx: Tx) -> None:
            await tx.execute("DELETE FROM workers WHERE id = ?", (worker,))

        await self.commit(Unit(write))

    async def workers(self, since: float) -> list[WorkerBeat]:
        """Workers that beat after ``since`` (a time.time())."""
        rows = await self.fetch(
            "SELECT id, host, engine, device, job_id, started_at, heartbeat_at, capabilities"
            " FROM workers WHERE heartbeat_at >= ? ORDER BY heartbeat_at DESC",
            (since,),
        )
        return [WorkerBeat(*row) for row in rows]

    # webhooks: a durable outbox, so a restart does not drop a delivery

    async def claim_webhooks(
        self, now: float, limit: int, hold: float, claim: str
    ) -> list[tuple[int, str, str, bytes, int]]:
        """Due deliveries, each taken under ``claim`` for ``hold`` seconds: only that claim may
        send it (see :meth:`hold_webhook`) and record its outcome. Another process takes it
        again only once the hold has run out without either."""

        async def take(tx: Tx) -> list[tuple[int, str, str, bytes, int]]:
            rows = await tx.fetch(
                "SELECT id, job_id, url, body, attempts FROM webhooks"
                " WHERE state = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ?"
                f"{self.claim_lock.replace(' OF j', '')}",
                (now, limit),
            )
            taken = [(int(r[0]), str(r[1]), str(r[2]), bytes(r[3]), int(r[4])) for r in rows]
            if taken:
                await tx.executemany(
                    "UPDATE webhooks SET next_at = ?, claim = ? WHERE id = ?",
                    [(now + hold, claim, webhook_id) for webhook_id, *_ in taken],
                )
            return taken

        result: list[tuple[int, str, str, bytes, int]] = await self.commit(Unit(take))
        return result

    async def next_webhook_at(self) -> float | None:
        rows = await self.fetch("SELECT MIN(next_at) FROM webhooks WHERE state = 'pending'")
        return None if rows[0][0] is None else float(rows[0][0])

    async def hold_webhook(self, webhook_id: int, claim: str, until: float) -> bool:
        """Right before sending: whether ``claim`` still has the delivery (then it is held until
        ``until``); False = another process took it meanwhile, or it is settled."""

        async def write(tx: Tx) -> int:
            return await tx.execute(
                "UPDATE webhooks SET next_at = ? WHERE id = ? AND claim = ? AND state = 'pending'",
                (until, webhook_id, claim),
            )

        return bool(await self.commit(Unit(write)) == 1)

    async def update_webhook(
        self, webhook_id: int, claim: str, *, state: str, attempts: int, next_at: float, error: str
    ) -> bool:
        """Record a delivery's outcome, if ``claim`` still has it; whether it did."""

        async def write(tx: Tx) -> int:
            return await tx.execute(
                "UPDATE webhooks SET state = ?, attempts = ?, next_at = ?, last_error = ?"
                " WHERE id = ? AND claim = ?",
                (state, attempts, next_at, error, webhook_id, claim),
            )

        return bool(await self.commit(Unit(write)) == 1)
