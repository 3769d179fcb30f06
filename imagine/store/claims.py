"""The queue in the database: claims under leases, fair across owners (mirrored by
:mod:`imagine.fairqueue`), the leases' renewal and expiry, and the workers' heartbeats.
"""

from __future__ import annotations

import os
import secrets
import socket
from typing import Any

from imagine.jobs import Job, utcnow
from imagine.store.base import COLUMNS, Lease, Tx, Unit, WorkerBeat, row_to_job, ts
from imagine.store.queries import Queries


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


class Claims(Queries):
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
                f" (SELECT COALESCE(MAX({self.seq}), 0) FROM jobs),"
                # the turns' own counter, not a clock: claims a millisecond apart stay in order
                " (SELECT COALESCE(MAX(served_at), 0) + 1 FROM turns) FROM jobs"
                " WHERE id = ? ON CONFLICT (owner) DO UPDATE SET"
                " served_seq = excluded.served_seq, served_at = excluded.served_at",
                (chosen,),
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
                f" capabilities) VALUES (?, ?, ?, ?, ?, ?, {self.now}, ?) ON CONFLICT (id) DO"
                " UPDATE SET job_id = excluded.job_id, heartbeat_at = excluded.heartbeat_at,"
                " capabilities = excluded.capabilities",
                (beat.id, beat.host, beat.engine, beat.device, beat.job_id, beat.started_at,
                 beat.capabilities),
            )  # fmt: skip
            if beat.capabilities:  # kept per engine, also once its workers are gone
                await tx.execute(
                    "INSERT INTO engines (name, capabilities, published_at) VALUES"
                    f" (?, ?, {self.now}) ON CONFLICT (name) DO UPDATE SET"
                    " capabilities = excluded.capabilities, published_at = excluded.published_at",
                    (beat.engine, beat.capabilities),
                )

        await self.commit(Unit(write))

    async def forget_worker(self, worker: str) -> None:
        async def write(tx: Tx) -> None:
            await tx.execute("DELETE FROM workers WHERE id = ?", (worker,))

        await self.commit(Unit(write))

    async def workers(self, within: float) -> list[WorkerBeat]:
        """Workers that beat in the last ``within`` seconds (by the database's clock)."""
        rows = await self.fetch(
            "SELECT id, host, engine, device, job_id, started_at, heartbeat_at, capabilities"
            f" FROM workers WHERE heartbeat_at >= {self.now} - ? ORDER BY heartbeat_at DESC",
            (float(within),),
        )
        return [WorkerBeat(*row) for row in rows]

    async def published_capabilities(self, engine: str) -> str | None:
        """What the workers of ``engine`` last said it can do (JSON), or None."""
        rows = await self.fetch("SELECT capabilities FROM engines WHERE name = ?", (engine,))
        return str(rows[0][0]) if rows else None
