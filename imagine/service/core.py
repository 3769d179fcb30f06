"""The service's lifecycle: its store, workers, webhook outbox and what the engine can do, and
the checks every submission shares (:mod:`imagine.service` puts the parts together)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import time
from collections import OrderedDict
from typing import Any

from imagine import actions
from imagine.codes import ResultCode
from imagine.edges.mj.task import task_view
from imagine.engines.base import Capabilities, Engine, capabilities_from_json
from imagine.errors import ServiceError, unavailable
from imagine.fetch import guarded_session
from imagine.inputs import Inputs
from imagine.jobs import Job, JobStatus
from imagine.limits import Limits, refusal
from imagine.messages import completed
from imagine.netguard import BlockedAddress
from imagine.prefilter import Prefilter
from imagine.runner import Runner
from imagine.settings import Settings
from imagine.storage import ImageStorage
from imagine.store import (
    JobStore,
    LimitReached,
    Quota,
    StoreUnavailable,
)
from imagine.webhooks import WebhookSender
from imagine.workers import WorkerPool

log = logging.getLogger(__name__)

UNSAVED_RETRY = 2.0
"""Seconds between tries to save jobs that ended while the database could not be written."""
CAPABILITIES_TTL = 5.0
"""Seconds an API instance without workers trusts the capabilities the workers last published."""
COPIERS = 10_000
"""Where the numbers of a process's U1–U4 copies start (they need no engine, so no worker)."""


class ServiceCore:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        store: JobStore,
        prefilter: Prefilter,
        storage: ImageStorage,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.store = store
        self.storage = storage
        self.prefilter = prefilter
        self.runner = Runner(
            store,
            engine,
            storage,
            actions.PlanContext(engine.capabilities, dict(settings.models), settings.model or None),
            settings.job_timeout,
            self._webhook_for,
        )
        self.webhooks = WebhookSender(
            store,
            secret=settings.webhook_secret,
            delays=settings.webhook_retry_delays,
            policy=settings.url_policy,
        )
        self._finished: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()
        """Completed messages (immutable once finished), by id, with the job's owner."""
        self._tasks: list[asyncio.Task[None]] = []
        self._draining = False
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._press_lock = asyncio.Lock()
        self._fetch = guarded_session(settings.allow_private_urls, settings.fetch_timeout)
        self.inputs = Inputs(storage, self._fetch, settings.url_policy, settings.max_image_bytes)
        self.limits = Limits(settings)
        self.pool = WorkerPool(
            settings, store, self.runner, self.workers, device=settings.environ.get(
                "IMAGINE_DEVICE", ""), on_done=self._job_done, on_start=self._job_started,
        )  # fmt: skip
        self._copies = itertools.count(COPIERS)
        self._published_at = -CAPABILITIES_TTL
        self._positions: tuple[float, dict[str, int]] = (0.0, {})
        self._reading_positions: asyncio.Task[dict[str, int]] | None = None

    @property
    def _wanted(self) -> int:
        """The workers asked for: ``--workers``, else IMAGINE_MAX_CONCURRENT."""
        workers = self.settings.workers
        return self.settings.max_concurrent if workers is None else workers

    @property
    def workers(self) -> int:
        """Jobs this process renders at once: as many as asked for, capped by what the engine
        can do (0 = an API instance that renders nothing)."""
        parallel = self.engine.capabilities.parallel
        return min(self._wanted, parallel or self._wanted)

    # lifecycle

    async def start(self) -> None:
        """Start the workers (their first look takes back what a crash here left running) and
        the webhook outbox."""
        wanted = self._wanted
        if self.workers < wanted:
            log.warning(
                "asked for %d workers, but the %s engine renders %d job(s) at a time: "
                "running %d worker(s)",
                wanted,
                self.engine.capabilities.name,
                self.workers,
                self.workers,
            )
        if self.workers:
            self.pool.start()
        self._tasks = [
            asyncio.create_task(self.webhooks.run()),
            asyncio.create_task(self._save_unsaved()),
        ]

    async def drain(self, grace: float) -> None:
        """Stop taking work (new submissions get 503) and give running jobs ``grace`` seconds to
        finish; what is still running then goes back to the queue."""
        self._draining = True
        copies = list(self._side_tasks)

        async def copied() -> None:
            if copies:
                await asyncio.wait(copies, timeout=grace)

        await asyncio.gather(self.pool.drain(grace), copied())

    async def close(self) -> None:
        await self.pool.close()
        for task in [*self._tasks, *self._side_tasks]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._side_tasks, return_exceptions=True)
        await self._fetch.close()

    def _enqueue(self, jobs: list[Job]) -> None:
        """New jobs are in the database: wake the workers; U1–U4 (a copy of a file, no engine)
        run here at once, or on any worker should this process die first."""
        if any(actions.needs_engine(job.action) for job in jobs):
            self.pool.wake()
        for job in jobs:
            if not actions.needs_engine(job.action):
                task = asyncio.create_task(self._copy(job.id))
                self._side_tasks.add(task)
                task.add_done_callback(self._side_tasks.discard)

    async def _copy(self, job_id: str) -> None:
        number = next(self._copies)  # each copy its own: the reaper knows every one alive
        try:
            claimed = await self.store.claim(
                self.pool.name(number), self.settings.lease_seconds, job_id
            )
        except StoreUnavailable as exc:
            log.warning("job %s: cannot start now (%s); a worker takes it later", job_id, exc)
            return
        if claimed is not None:
            await self.pool.run(number, *claimed)

    @property
    def capabilities(self) -> Capabilities:
        """What the engine can do, as the workers know it (see :meth:`_learn_capabilities`)."""
        return self.runner.context.capabilities

    async def _learn_capabilities(self) -> None:
        """An API instance alone loads no model, so it cannot know what the model can do (which
        buttons to offer, whether it starts from an image): it takes what the workers published
        in their heartbeats, at most every CAPABILITIES_TTL seconds."""
        own = self.engine.capabilities
        if self.workers or own.known_before_start:
            return  # this process's own engine knows (the remote engines, and any that renders)
        now = time.monotonic()
        if now - self._published_at < CAPABILITIES_TTL:
            return
        try:
            text = await self.store.published_capabilities(own.name)
        except StoreUnavailable:
            return
        published = capabilities_from_json(text) if text else None
        if published is not None and published.name == own.name:
            self._published_at = now  # found: trusted for a while; not found: look next time
            context = self.runner.context
            self.runner.context = dataclasses.replace(context, capabilities=published)

    def _unsaved(self, status: JobStatus) -> int:
        return sum(1 for _, previous, _ in self.runner.unsaved.values() if previous is status)

    def _job_done(self) -> None:
        self.webhooks.wake()

    async def _save_unsaved(self) -> None:
        """Jobs that ended while the database could not be written (a full disk) are saved, with
        their webhooks, as soon as it can be written again."""
        while True:
            await asyncio.sleep(UNSAVED_RETRY)
            if self.runner.unsaved and await self.runner.save_unsaved():
                self.webhooks.wake()

    def _webhook_for(self, job: Job) -> tuple[str, bytes] | None:
        """The delivery a finished job owes, in the shape of the contract it was asked through."""
        url = job.webhook or self.settings.webhook_url
        if not url:
            return None
        if job.contract == "mj":
            return url, json.dumps(task_view(job, None, self.settings.base_url)).encode()
        return url, json.dumps(completed(job, self.settings.base_url)).encode()

    def _job_started(self, job: Job) -> None:
        """midjourney-proxy's notifyHook hears of the start too (TheNextLeg's webhook does not)."""
        if job.contract != "mj" or not (url := job.webhook or self.settings.webhook_url):
            return
        body = json.dumps(task_view(job, None, self.settings.base_url)).encode()
        task = asyncio.create_task(self._queue_start(job.id, url, body))
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def _queue_start(self, job_id: str, url: str, body: bytes) -> None:
        try:
            await self.store.queue_webhook(job_id, url, body)
        except StoreUnavailable as exc:  # a nicety: the outcome is delivered all the same
            log.warning("job %s: the notice of its start cannot be queued: %s", job_id, exc)
            return
        self.webhooks.wake()

    # requests

    def _check_webhook(self, url: str) -> str:
        url = url.strip()
        if url:
            try:
                self.settings.url_policy.check(url)
            except (BlockedAddress, ValueError) as exc:
                raise ServiceError(
                    400, ResultCode.INVALID_LINK, f"webhookOverride cannot be used: {exc}."
                ) from None
        return url

    def _check_open(self) -> None:
        if self._draining:
            raise unavailable("The service is shutting down and takes no new jobs.", 10)

    async def _precheck(self, quota: Quota, adding: int) -> None:
        """Refuse early, before images are fetched, what the quota would refuse at the insert."""
        unfinished = await self.store.count_unfinished(quota.owner) if quota.owner_cap else 0
        waiting = await self.store.count_waiting() if quota.queue_limit and quota.waiting else 0
        if reached := quota.refused(adding, unfinished, waiting):
            raise refusal(reached, adding)

    async def _add(self, jobs: list[Job], quota: Quota | None) -> None:
        """Store the jobs, only if the quota allows them (checked in the insert's transaction)."""
        self._check_open()  # again: fetching an image link may have outlasted the start of a stop
        try:
            await self.store.add(jobs, quota)
        except LimitReached as reached:
            raise refusal(reached, len(jobs)) from None
        except StoreUnavailable as exc:
            raise unavailable(f"{str(exc).rstrip('.')}; the job was not accepted.") from None
