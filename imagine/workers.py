"""Render workers: each claims the next job from the database under a lease, renews the lease
while it renders (publishing progress for every API instance), and saves the result only while
the lease still holds it.

Any process may run workers: ``serve`` (API and workers together, the single-machine mode) or
``worker`` (workers alone, beside a GPU). A worker killed mid-job stops renewing; once its lease
runs out (IMAGINE_LEASE_SECONDS) any other worker's reaper puts the job back in the queue, up
to IMAGINE_MAX_ATTEMPTS starts; a restart on the same host takes its own dead jobs back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from imagine.codes import ResultCode
from imagine.engines.base import capabilities_json
from imagine.jobs import Job, JobStatus, utcnow
from imagine.previews import image_key
from imagine.runner import Runner
from imagine.settings import Settings
from imagine.storage import StorageError
from imagine.store import (
    LIVE_MARKS,
    Fenced,
    JobStore,
    Lease,
    StoreUnavailable,
    WorkerBeat,
    new_mark,
    worker_name,
)
from imagine.store.claims import HOST

log = logging.getLogger(__name__)

POLL = 1.0
"""Seconds an idle worker waits for news of a job before it looks in the database itself."""
BEAT_EVERY = 5.0
"""Seconds between workers' heartbeats."""
OUTAGE_RETRY = (0.5, 1.0, 2.0, 3.0)
"""Waits between tries while the database cannot be reached."""


class WorkerPool:
    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        runner: Runner,
        count: int,
        *,
        device: str = "",
        on_done: Callable[[], None] = lambda: None,
        on_start: Callable[[Job], None] = lambda job: None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.runner = runner
        self.count = count
        self.device = device
        self.on_done = on_done
        """Called after each finished job (its webhook is in the outbox)."""
        self.on_start = on_start
        """Called as each claimed job starts (a U1–U4 copy too)."""
        self.running: dict[int, tuple[Job, Lease]] = {}
        self._work = asyncio.Event()
        self.mark = new_mark()
        self._stopping = False
        self._orderly = False
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._side: list[asyncio.Task[None]] = []
        self._started = time.time()

    @property
    def lease_seconds(self) -> float:
        return self.settings.lease_seconds

    def wake(self) -> None:
        """A job was added: idle workers look now."""
        self._work.set()

    def start(self) -> None:
        self._tasks = {n: asyncio.create_task(self._worker(n)) for n in range(self.count)}
        self._side = [
            asyncio.create_task(self._reaper()),
            asyncio.create_task(self._beats()),
            asyncio.create_task(self.store.watch(self.wake)),
        ]

    async def drain(self, grace: float) -> None:
        """Take no new jobs; give running ones ``grace`` seconds, then stop them (they go back
        to the queue: an orderly stop does not count as an attempt)."""
        self._stopping = self._orderly = True
        self._work.set()  # idle workers wake, see the stop and end
        # No worker is cancelled here: one in the middle of a claim may have the job already
        # (committed, not yet returned; clients already see it running), and runs it.
        tasks = list(self._tasks.values())
        if self.running:
            log.info(
                "stopping: waiting up to %.0f s for %d running job(s)", grace, len(self.running)
            )
        if tasks:
            _, still = await asyncio.wait(tasks, timeout=grace)
            if still and self.running:
                log.warning(
                    "stopping: %d job(s) still running go back to the queue", len(self.running)
                )

    def name(self, number: int) -> str:
        return worker_name(number, self.mark)

    async def close(self) -> None:
        """Stop now: a job cut off here is as if the process had died (it counts as a start),
        unless :meth:`drain` ran first."""
        self._stopping = True
        tasks = [*self._tasks.values(), *self._side]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        LIVE_MARKS.discard(self.mark)
        for number in self._tasks:
            with contextlib.suppress(Exception):
                await self.store.forget_worker(self.name(number))

    async def _worker(self, number: int) -> None:
        name = self.name(number)
        failures = 0
        while not self._stopping:
            self._work.clear()
            try:
                claimed = await self.store.claim(name, self.lease_seconds)
            except Exception as exc:  # a worker outlives any one failed claim
                if failures == 0:
                    log.warning("worker %d: could not claim a job: %s", number, exc)
                await asyncio.sleep(OUTAGE_RETRY[min(failures, len(OUTAGE_RETRY) - 1)])
                failures += 1
                continue
            if failures:
                log.info("worker %d: the job database can be reached again", number)
                failures = 0
            if claimed is None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL):
                        await self._work.wait()
                continue
            try:
                await self.run(number, *claimed)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker %d: job %s could not be finished", number, claimed[0].id)

    async def run(self, number: int, job: Job, lease: Lease) -> None:
        """Run a claimed job, renewing its lease until it ends."""
        self.running[number] = (job, lease)
        self.on_start(job)
        keeper = asyncio.create_task(self._keep(job, lease))
        try:
            await self.runner.run(job, lease)
        except asyncio.CancelledError:
            if self._orderly:  # an orderly stop is not a crash: this start does not count
                await requeue(self.store, job, lease, orderly=True)
            raise
        finally:
            keeper.cancel()
            self.running.pop(number, None)
        await self._tidy_cancelled(job)
        self.on_done()

    async def _tidy_cancelled(self, job: Job) -> None:
        """A job cancelled while it rendered here saved nothing from here (the cancel took its
        lease), but its engine may have stored files before it stopped (a grid that was done
        just as the cancel landed, a last preview): they go, now that nothing writes them."""
        if job.id in self.runner.unsaved:
            return  # it ended while the database could not be written: nothing to ask it
        try:
            current = await self.store.get(job.id)
        except Exception as exc:  # the files stay; the job is over all the same
            log.warning("job %s: could not look whether it was cancelled: %s", job.id, exc)
            return
        if current is None or current.error_code is not ResultCode.CANCELLED:
            return
        try:
            await self.runner.storage.delete_prefix(image_key(job.id, ""))
        except StorageError as exc:
            log.warning("job %s: the files of its cancelled run could not be removed: %s",
                        job.id, exc)  # fmt: skip

    async def _keep(self, job: Job, lease: Lease) -> None:
        """Renew the lease (a third of its length, at most every second, so progress shows)."""
        every = min(self.lease_seconds / 3, 1.0)
        while True:
            await asyncio.sleep(every)
            state = self.runner.states.get(job.id)
            fraction, preview = (state.fraction, state.preview) if state else (0.0, None)
            try:
                held = await self.store.renew(job.id, lease, self.lease_seconds, fraction, preview)
            except Exception as exc:  # keep rendering: the lease may outlast the outage
                log.warning("job %s: its lease could not be renewed: %s", job.id, exc)
                continue
            if not held and state is not None:
                log.warning("job %s: its lease was lost; stopping it here", job.id)
                state.lost = True
                state.cancelled.set()
                return

    async def _reaper(self) -> None:
        """Put jobs whose worker died back in the queue (or fail them past the attempt cap)."""
        every = min(5.0, max(self.lease_seconds / 4, 0.25))
        while True:
            try:
                for job, lease in await self.store.abandoned():
                    if any(job.id == held.id for held, _ in self.running.values()):
                        continue  # ours and alive (a renewal is merely late)
                    await self.give_back(job, lease)
            except StoreUnavailable:
                pass  # the workers say so; try again next round
            except Exception:
                log.exception("reaper: could not look for abandoned jobs")
            await asyncio.sleep(every)

    async def give_back(self, job: Job, lease: Lease | None) -> None:
        if job.attempts >= self.settings.max_attempts:
            job.status, job.finished_at = JobStatus.FAILED, utcnow()
            job.error_code = ResultCode.INTERNAL_ERROR
            job.error = f"The job was interrupted {job.attempts} times and was given up."
            if await self.runner.finish(job, JobStatus.RUNNING, lease):
                log.warning("job %s: interrupted %d times, given up", job.id, job.attempts)
                self.on_done()
            return
        if await requeue(self.store, job, lease):
            log.info("job %s: its worker is gone; it goes back to the queue", job.id)
            self.wake()

    async def _beats(self) -> None:
        engine = self.runner.engine.capabilities.name
        published = capabilities_json(self.runner.engine.capabilities)
        while True:
            for number in range(self.count):
                job = self.running.get(number)
                beat = WorkerBeat(self.name(number), HOST, engine, self.device,
                                  job[0].id if job else None, self._started,
                                  capabilities=published)  # fmt: skip
                with contextlib.suppress(StoreUnavailable):
                    await self.store.beat(beat)
            await asyncio.sleep(BEAT_EVERY)


async def requeue(store: JobStore, job: Job, lease: Lease | None, *, orderly: bool = False) -> bool:
    """Put a running job back in the queue (only if ``lease`` still holds it); whether it was."""
    job.status, job.started_at, job.progress, job.preview = JobStatus.QUEUED, None, 0.0, None
    if orderly:
        job.attempts -= 1
    try:
        await store.save(job, JobStatus.RUNNING, lease=lease)
    except Fenced:
        return False  # someone else took it back first
    except Exception as exc:  # it stays running there, and its lease runs out all the same
        log.warning("job %s: could not be put back in the queue: %s", job.id, exc)
        return False
    return True
