"""The Imagine service's domain: accept jobs, run them fairly, answer for them.

It raises :class:`ServiceError` (an HTTP status, a result code and a sentence); only the HTTP
edge (:mod:`imagine.app`) turns those into responses. A job belongs to the API token that made
it: any other token is told it does not exist.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import secrets
import time
from collections import OrderedDict
from datetime import timedelta
from typing import Any

from imagine import __version__, actions
from imagine.codes import ResultCode
from imagine.engines.base import Capabilities, Engine, capabilities_from_json
from imagine.errors import ServiceError, unavailable
from imagine.fairqueue import positions, tier_for
from imagine.fetch import guarded_session
from imagine.inputs import Inputs
from imagine.jobs import Job, JobStatus, new_id, utcnow
from imagine.limits import Limits, belongs_to, owner_of, refusal
from imagine.messages import completed, running
from imagine.netguard import BlockedAddress
from imagine.prefilter import Prefilter
from imagine.prompt import ImaginePrompt, PromptError, choose_model, parse, tile_seeds
from imagine.prompt.parse import is_link
from imagine.runner import Runner, RunState
from imagine.settings import Settings
from imagine.storage import ImageStorage
from imagine.store import (
    AlreadyExists,
    JobStore,
    LimitReached,
    Quota,
    StoreUnavailable,
)
from imagine.webhooks import WebhookSender
from imagine.workers import BEAT_EVERY, WorkerPool

__all__ = ["ImagineService", "ServiceError"]

log = logging.getLogger(__name__)

MAX_MSG_CHARS = 4000
MAX_REF_CHARS = 2000
MAX_IMAGE_PROMPTS = 5
MIN_BLEND = 2
BLEND_DIMENSIONS = {"square": "1:1", "portrait": "2:3", "landscape": "3:2"}
"""Midjourney's /blend shapes."""
FINISHED_CACHE = 2048
UNSAVED_RETRY = 2.0
"""Seconds between tries to save jobs that ended while the database could not be written."""
CAPABILITIES_TTL = 5.0
"""Seconds an API instance without workers trusts the capabilities the workers last published."""
POSITIONS_TTL = 0.5
"""Seconds one reading of the queue answers every poll's queue position."""
COPIERS = 10_000
"""Where the numbers of a process's U1–U4 copies start (they need no engine, so no worker)."""


class ImagineService:
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
                "IMAGINE_DEVICE", ""), on_done=self._job_done,
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
        url = job.webhook or self.settings.webhook_url
        if not url:
            return None
        return url, json.dumps(completed(job, self.settings.base_url)).encode()

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

    async def imagine(
        self,
        msg: str,
        *,
        ref: str = "",
        webhook: str = "",
        ignore_prefilter: bool = False,
        token: str | None = None,
        max_unfinished: int | None = None,
        content: str | None = None,
    ) -> list[Job]:
        """Accept ``msg`` as one job per prompt it expands to. ``content``: what the completed
        message shows as the prompt (default: ``msg`` without its leading image links)."""
        if not msg.strip():
            raise ServiceError(400, ResultCode.INVALID_PARAMETER, "msg is empty: send a prompt.")
        if len(msg) > MAX_MSG_CHARS:
            raise ServiceError(
                400,
                ResultCode.INVALID_PARAMETER,
                f"msg is {len(msg)} characters long; the limit is {MAX_MSG_CHARS}.",
            )
        if len(ref) > MAX_REF_CHARS:
            raise ServiceError(
                400, None, f"ref is {len(ref)} characters long; the limit is {MAX_REF_CHARS}."
            )
        self._check_open()
        webhook = self._check_webhook(webhook)
        self.limits.check_rate(ref, token)
        await self._learn_capabilities()
        context = self.runner.context
        try:
            prompts = parse(msg)
            # an unmapped --v is an error now, not when the job runs
            models = [choose_model(p, context.models, context.default_model) for p in prompts]
        except PromptError as exc:
            raise ServiceError(400, exc.code, exc.message) from None
        if not ignore_prefilter:
            # what the engine will read: each expansion's text and negatives, never the raw msg
            # ({na,zz}ked expands to a banned word; a link-looking word later in the text is text)
            for prompt in prompts:
                if word := self.prefilter.find(f"{prompt.text} {prompt.negative_prompt}"):
                    raise ServiceError(400, ResultCode.BANNED_PROMPT, f"Invalid phrase: '{word}'")
        for prompt, model in zip(prompts, models, strict=True):
            # the job's own model decides (one --v may map to a model that cannot edit)
            if prompt.image_urls and not context.capabilities.for_model(model).img2img:
                raise ServiceError(
                    400, ResultCode.INVALID_PARAMETER,
                    f"The {self.engine.capabilities.name} engine cannot start from an image"
                    f"{f' with {model}' if model else ''}; remove the image link.",
                )  # fmt: skip
        if len({url for p in prompts for url in p.image_urls}) > MAX_IMAGE_PROMPTS:
            raise ServiceError(400, ResultCode.INVALID_LINK,
                               f"At most {MAX_IMAGE_PROMPTS} image links can start a prompt.")  # fmt: skip
        quota = self.limits.quota(ref, token, waiting=len(prompts), limit=max_unfinished)
        owner = quota.owner
        if any(p.image_urls for p in prompts):  # refuse before fetching what would be refused
            await self._precheck(quota, len(prompts))
        inputs = await self.inputs.fetch([url for p in prompts for url in p.image_urls])
        jobs = []
        for prompt in prompts:
            jobs.append(
                self._new_job(
                    action="imagine",
                    owner=owner,
                    content=content
                    if content is not None and len(prompts) == 1
                    else _content(prompt, msg, len(prompts)),
                    prompt=prompt,
                    ref=ref,
                    webhook=webhook,
                    inputs=[inputs[url] for url in prompt.image_urls],
                )
            )
        await self._add(jobs, quota)
        self._enqueue(jobs)
        log.info("accepted %d job(s) %s for %s", len(jobs), [j.id for j in jobs], owner)
        return jobs

    async def blend(
        self,
        urls: list[str],
        *,
        dimensions: str = "",
        ref: str = "",
        webhook: str = "",
        token: str | None = None,
        max_unfinished: int | None = None,
    ) -> list[Job]:
        """Midjourney's /blend: one grid from 2 to 5 images and no text, at a chosen shape."""
        if not MIN_BLEND <= len(urls) <= MAX_IMAGE_PROMPTS:
            raise ServiceError(
                400, ResultCode.INVALID_PARAMETER,
                f"A blend takes {MIN_BLEND} to {MAX_IMAGE_PROMPTS} image links; got {len(urls)}.",
            )  # fmt: skip
        for url in urls:
            if not is_link(url) or any(c.isspace() for c in url):
                raise ServiceError(
                    400, ResultCode.INVALID_LINK,
                    f"Invalid link: `{url[:100]}` is not an http(s) image link.",
                )  # fmt: skip
        shape = BLEND_DIMENSIONS.get(dimensions.strip().lower() or "square")
        if shape is None:
            raise ServiceError(
                400, ResultCode.INVALID_PARAMETER,
                f"dimensions must be one of {', '.join(BLEND_DIMENSIONS)}, got {dimensions!r}.",
            )  # fmt: skip
        msg = " ".join([*urls, f"--ar {shape}"])
        return await self.imagine(
            msg, ref=ref, webhook=webhook, token=token, max_unfinished=max_unfinished, content=msg
        )

    def _new_job(
        self,
        *,
        action: str,
        owner: str,
        content: str,
        prompt: ImaginePrompt,
        ref: str,
        webhook: str,
        inputs: list[str] | None = None,
        parent: Job | None = None,
        tile: int | None = None,
    ) -> Job:
        seeds: tuple[int, ...] = ()
        if actions.needs_engine(action) and action not in actions.UPSCALE_FACTORS:
            fixed = prompt.seed is not None and action == "imagine"
            base = prompt.seed if fixed and prompt.seed is not None else secrets.randbelow(2**32)
            seeds = tile_seeds(dataclasses.replace(prompt, seed=base), count=4)
        return Job(
            id=new_id(),
            button_message_id=new_id(),
            action=action,
            type=actions.RESULT_TYPE[action],
            owner=owner,
            content=content,
            prompt=prompt.to_dict(),
            ref=ref,
            webhook=webhook,
            priority=tier_for(prompt.speed),
            parent_id=parent.id if parent else None,
            tile=tile,
            inputs=inputs or [],
            result={"seeds": list(seeds)},
        )

    async def press(
        self,
        button_message_id: str,
        button: str,
        *,
        ref: str = "",
        webhook: str = "",
        token: str | None = None,
    ) -> Job:
        self._check_open()
        webhook = self._check_webhook(webhook)
        self.limits.check_rate(ref, token)
        await self._learn_capabilities()  # a U1–U4 copy made here offers the workers' buttons
        parent = await self.store.by_button_message_id(button_message_id)
        if parent is None or not belongs_to(parent.owner, token):
            raise ServiceError(
                404,
                ResultCode.BUTTON_NOT_FOUND,
                f"No message has buttonMessageId {button_message_id!r}.",
            )
        offered = parent.result.get("buttons", []) if parent.status is JobStatus.DONE else []
        if button not in offered:
            choices = ", ".join(offered) or "none"
            raise ServiceError(
                400,
                ResultCode.BUTTON_NOT_FOUND,
                f"BUTTON_NOT_FOUND: {button!r} is not a button of that message (it has: {choices}).",
            )
        # A press is charged to whoever pressed it: their token and the user their ref names
        # (the parent's ref when they send none; the parent is this token's own job).
        charged = ref or parent.ref
        quota: Quota | None = None
        if actions.needs_engine(button):  # U1–U4 only share a file: nothing to wait for
            quota = self.limits.quota(charged, token, waiting=1, limit=None)
        async with self._press_lock:  # two quick presses of one U must not both upscale
            if button in actions.TILE_BUTTONS and (
                earlier := await self.store.pressed(parent.id, button)
            ):
                raise _already_pressed(button, earlier)
            tile = actions.TILE_BUTTONS.get(button)
            job = self._new_job(
                action=button,
                owner=owner_of(charged, token),
                content=parent.content,
                prompt=ImaginePrompt.from_dict(parent.prompt),
                ref=charged,
                webhook=webhook,
                parent=parent,
                tile=tile,
                # 🔄 re-rolls the whole prompt, image prompts (and a blend's images) included.
                inputs=parent.inputs if button == "🔄" else None,
            )
            try:
                await self._add([job], quota)
            except AlreadyExists:  # pressed on another API instance a moment ago
                earlier = await self.store.pressed(parent.id, button)
                if earlier is None:
                    raise unavailable("That button could not be pressed now.", 1) from None
                raise _already_pressed(button, earlier) from None
        self._enqueue([job])
        return job

    async def message(
        self, job_id: str, expire_mins: float = 12.0, token: str | None = None
    ) -> dict[str, Any]:
        # Polls are most of the traffic: finished jobs (immutable from then on) are answered
        # from a small cache, the rest from the database, which every instance shares.
        unknown = ServiceError(404, None, f"No message has id {job_id!r}.")
        job = self.runner.unsaved_job(job_id)
        if job is None:
            if (cached := self._finished.get(job_id)) is not None:
                if not belongs_to(cached[0], token):
                    raise unknown
                self._finished.move_to_end(job_id)
                return cached[1]
            job = await self.store.get(job_id)
            if job is None:
                raise unknown
        if not belongs_to(job.owner, token):
            raise unknown
        if job.status.finished:
            answer = {"progress": 100, "response": completed(job, self.settings.base_url)}
            if job_id not in self.runner.unsaved:
                self._finished[job_id] = (job.owner, answer)
            if len(self._finished) > FINISHED_CACHE:
                self._finished.popitem(last=False)
            return answer
        if utcnow() - job.created_at > timedelta(minutes=expire_mins):
            return {"progress": "incomplete"}
        # this process's own worker knows it best; any other's wrote it in the row
        state = self.runner.states.get(job.id) or RunState(job.id, job.progress, job.preview)
        position = (
            (await self._queue_positions()).get(job.id) if job.status is JobStatus.QUEUED else None
        )
        return running(job, state, position, self.settings.base_url)

    async def _queue_positions(self) -> dict[str, int]:
        """Every queued job's place in the turn order, read at most every POSITIONS_TTL
        seconds, by one reading that all the polls meanwhile share."""
        loop = asyncio.get_running_loop()
        read_at, known = self._positions
        if loop.time() - read_at < POSITIONS_TTL:
            return known
        if self._reading_positions is None or self._reading_positions.done():
            self._reading_positions = asyncio.create_task(self._read_positions())
        return await asyncio.shield(self._reading_positions)

    async def _read_positions(self) -> dict[str, int]:
        queued, turns, top = await self.store.queue_snapshot()
        order = positions(queued, turns, top)
        self._positions = (asyncio.get_running_loop().time(), order)
        return order

    async def info(self, user: str | None = None, token: str | None = None) -> dict[str, Any]:
        await self._learn_capabilities()
        caps = self.capabilities
        data: dict[str, Any] = {
            "success": True,
            "version": __version__,
            "engine": caps.name,
            "placeholder": caps.is_placeholder,
            # jobs that ended here while the database could not be written are not waiting
            "queued": max(0, await self.store.count_waiting() - self._unsaved(JobStatus.QUEUED)),
            "running": max(0, await self.store.count_running() - self._unsaved(JobStatus.RUNNING)),
            "queueLimit": self.settings.queue_limit,
            "maxConcurrent": self.workers,
            # every process's workers that beat lately (this one's, and other machines')
            "workers": len(await self.store.workers(3 * BEAT_EVERY)),
            "capabilities": {
                "img2img": caps.img2img,
                "outpaint": caps.outpaint,
                "upscale": caps.upscale,
                "upscaler": caps.upscaler
                or ("the engine's own" if caps.upscale else "Lanczos resampling"),
                "seeds": caps.seeds,
                "nativeSize": caps.native_size,
            },
            "notes": list(caps.notes),
        }
        if user:
            data["userUnfinished"] = await self.store.count_unfinished(
                owner_of(json.dumps({"user": user}), token)
            )
        return data


def _already_pressed(button: str, earlier: Job) -> ServiceError:
    return ServiceError(
        409,
        ResultCode.ALREADY_REQUESTED_UPSCALE,
        f"{button} was already pressed on this message; its result is messageId {earlier.id}.",
        messageId=earlier.id,
    )


def _content(prompt: ImaginePrompt, msg: str, count: int) -> str:
    """The prompt as the user wrote it; each permutation shows its own expansion."""
    if count == 1:
        words = msg.split()
        while words and is_link(words[0]):  # the leading image links are not the prompt
            words.pop(0)
        return " ".join(words)
    return prompt.normalised()
