"""The job store: jobs written and read in SQL both databases speak, with the queue's claims
(:mod:`imagine.store.claims`) and the webhook outbox (:mod:`imagine.store.outbox`).
"""

from __future__ import annotations

from typing import Any

from imagine.jobs import Job, JobStatus, check_transition
from imagine.store.base import (
    ADD_WEBHOOK,
    COLUMNS,
    COUNT_WAITING,
    UPDATE_JOB,
    Lease,
    Quota,
    Tx,
    Unit,
    job_values,
    row_to_job,
)
from imagine.store.claims import Claims
from imagine.store.modals import Modals
from imagine.store.outbox import Outbox


class Fenced(RuntimeError):
    """The job is no longer what the writer thinks (another worker took it, or it moved on)."""


class JobStore(Claims, Outbox, Modals):
    async def add(self, jobs: list[Job], quota: Quota | None = None) -> None:
        """Insert ``jobs`` together; with a ``quota``, only if it allows them (else LimitReached)."""
        await self.commit(Unit(self.notify, [job_values(job) for job in jobs], quota))

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

    async def held(self, job_id: str) -> tuple[Job, Lease | None] | None:
        """The job as it is now, with the lease its worker holds it under (None while it is not
        running, or for a row from before leases): what a write that must not race that worker
        is fenced with."""
        rows = await self.fetch(
            f"SELECT {COLUMNS}, lease, worker FROM jobs WHERE id = ?", (job_id,)
        )
        if not rows:
            return None
        *fields, token, worker = rows[0]
        job = row_to_job(fields)
        holds = job.status is JobStatus.RUNNING and token
        return job, Lease(str(token), str(worker or "")) if holds else None

    async def get_many(self, ids: list[str]) -> list[Job]:
        """The jobs with these ids that exist, in the order asked."""
        found: dict[str, Job] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), 500):  # SQLite's limit on bound parameters
            chunk = unique[start : start + 500]
            rows = await self.fetch(
                f"SELECT {COLUMNS} FROM jobs WHERE id IN ({', '.join('?' * len(chunk))})", chunk
            )
            found.update((job.id, job) for job in map(row_to_job, rows))
        return [found[i] for i in unique if i in found]

    async def recent(self, scope: str, limit: int, *, unfinished: bool = False) -> list[Job]:
        """A token's latest jobs (its scope, any user), newest first."""
        states = " AND status IN ('queued', 'running')" if unfinished else ""
        rows = await self.fetch(
            f"SELECT {COLUMNS} FROM jobs WHERE (owner = ? OR owner LIKE ?){states}"
            f" ORDER BY {self.seq} DESC LIMIT ?",
            (scope, f"{scope}:%", limit),
        )
        return [row_to_job(row) for row in rows]

    async def queue_webhook(self, job_id: str, url: str, body: bytes) -> None:
        """A delivery due now that no job write carries (a job that started), only while the
        job still runs: one that ended meanwhile (done, or cancelled right after its claim) has
        its outcome queued already, and a receiver must never read "in progress" after it."""

        async def write(tx: Tx) -> None:
            # a write that changes nothing, to lock the row until the commit (PostgreSQL): an
            # outcome saved meanwhile waits, and then replaces this notice as it replaces any
            held = await tx.execute(
                "UPDATE jobs SET status = status WHERE id = ? AND status = 'running'", (job_id,)
            )
            if held == 1:
                await tx.execute(ADD_WEBHOOK.format(now=self.now), (job_id, url, body, 0.0))

        await self.commit(Unit(write))

    async def delete_finished(self, job_id: str, owner: str) -> bool:
        """Take a finished job of ``owner`` out of the database; whether there was one."""

        async def write(tx: Tx) -> int:
            return await tx.execute(
                "DELETE FROM jobs WHERE id = ? AND owner = ? AND status IN ('done', 'failed')",
                (job_id, owner),
            )

        return bool(await self.commit(Unit(write)))

    async def by_button_message_id(self, button_message_id: str) -> Job | None:
        return await self._one("button_message_id = ?", button_message_id)

    async def pressed(self, parent_id: str, action: str) -> Job | None:
        """The job a press of ``action`` on ``parent_id`` made earlier, unless that one failed."""
        return await self._one(
            f"parent_id = ? AND action = ? AND status != 'failed' ORDER BY {self.seq} LIMIT 1",
            parent_id,
            action,
        )

    async def save(
        self,
        job: Job,
        previous: JobStatus,
        webhook: tuple[str, bytes, float] | None = None,
        lease: Lease | None = None,
    ) -> None:
        """Write ``job`` whose status moved from ``previous`` (checked) in one transaction, with
        the webhook delivery (url, body, seconds until due) it owes, so a crash cannot keep one without
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
                # an update not yet sent (the job started) is out of date now: the outcome
                # goes instead, so a receiver never reads "in progress" after "done"
                await tx.execute(
                    "DELETE FROM webhooks WHERE job_id = ? AND state = 'pending'", (job.id,)
                )
                await tx.execute(ADD_WEBHOOK.format(now=self.now), (job.id, url, body, due))
            if changed == 1 and job.status is JobStatus.QUEUED:
                await self.notify(tx)
            return changed

        if await self.commit(Unit(write)) != 1:
            raise Fenced(f"job {job.id} was not {previous} under this lease; not saved")
