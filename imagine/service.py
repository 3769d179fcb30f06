"""The Imagine service's domain: accept jobs, run them fairly, answer for them.

It raises :class:`ServiceError` (an HTTP status, a result code and a sentence); only the HTTP
edge (:mod:`imagine.app`) turns those into responses.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import secrets
from collections import OrderedDict
from datetime import timedelta
from typing import Any

from imagine import __version__, actions, images
from imagine.codes import ResultCode
from imagine.engines.base import Engine
from imagine.fairqueue import FairQueue, tier_for
from imagine.fetch import FetchError, fetch_bytes, guarded_session
from imagine.jobs import Job, JobStatus, new_id, utcnow
from imagine.messages import completed, running
from imagine.netguard import BlockedAddress
from imagine.prefilter import Prefilter
from imagine.prompt import ImaginePrompt, PromptError, choose_model, parse, tile_seeds
from imagine.prompt.parse import is_link
from imagine.ratelimit import RateLimiter
from imagine.runner import Runner
from imagine.settings import Settings
from imagine.store import JobStore
from imagine.webhooks import WebhookSender

log = logging.getLogger(__name__)

MAX_MSG_CHARS = 4000
MAX_REF_CHARS = 2000
MAX_IMAGE_PROMPTS = 5
MIN_BLEND = 2
BLEND_DIMENSIONS = {"square": "1:1", "portrait": "2:3", "landscape": "3:2"}
"""Midjourney's /blend shapes."""
FINISHED_CACHE = 2048


class ServiceError(Exception):
    def __init__(self, status: int, code: ResultCode | None, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def token_scope(token: str | None) -> str:
    """A stable name for an API token that does not store the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()[:12] if token else "local"


def ref_user(ref: str) -> str:
    """The "user" of a JSON-object ref (the bot sends the Discord user id), or ""."""
    if not ref.lstrip().startswith("{"):
        return ""
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        data = json.loads(ref)
        if isinstance(data, dict):
            return str(data.get("user") or data.get("userId") or "")
    return ""


def owner_of(ref: str, token: str | None) -> str:
    """Who a job belongs to, for fairness and per-user counts: the ref's "user", scoped by token."""
    user = ref_user(ref)
    return f"{token_scope(token)}:{user}" if user else token_scope(token)


class ImagineService:
    def __init__(
        self, settings: Settings, engine: Engine, store: JobStore, prefilter: Prefilter
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.store = store
        self.prefilter = prefilter
        self.queue = FairQueue()
        self.runner = Runner(
            store,
            engine,
            settings.data_dir,
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
        self._unfinished: dict[str, Job] = {}
        """Every queued or running job, by id: the live copy its worker updates."""
        self._finished: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.active: set[str] = set()
        """Jobs taken from the queue and not yet finished."""
        self._tasks: list[asyncio.Task[None]] = []
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._press_lock = asyncio.Lock()
        self._fetch = guarded_session(settings.allow_private_urls, settings.fetch_timeout)
        self._decoding = asyncio.Semaphore(2)
        self._token_rate = RateLimiter(settings.rate_per_token)
        self._user_rate = RateLimiter(settings.rate_per_user)

    @property
    def workers(self) -> int:
        """Jobs rendered at once: IMAGINE_MAX_CONCURRENT, capped by what the engine can do."""
        parallel = self.engine.capabilities.parallel
        return min(self.settings.max_concurrent, parallel or self.settings.max_concurrent)

    # lifecycle

    async def start(self) -> None:
        """Resume what a previous run left unfinished, then start the workers."""
        for job in await self.store.unfinished():
            if job.status is JobStatus.RUNNING:
                if job.attempts >= self.settings.max_attempts:
                    job.status, job.finished_at = JobStatus.FAILED, utcnow()
                    job.error_code = ResultCode.INTERNAL_ERROR
                    job.error = f"The job was interrupted {job.attempts} times and was given up."
                    await self.runner.finish(job, JobStatus.RUNNING)
                    continue
                job.status = JobStatus.QUEUED
                await self.store.save(job, JobStatus.RUNNING)
                log.info("job %s was interrupted; it runs again", job.id)
            self._enqueue(job)
        if self.workers < self.settings.max_concurrent:
            log.warning(
                "IMAGINE_MAX_CONCURRENT is %d, but the %s engine renders %d job(s) at a time: "
                "running %d worker(s)",
                self.settings.max_concurrent,
                self.engine.capabilities.name,
                self.workers,
                self.workers,
            )
        self._tasks = [asyncio.create_task(self._worker(n)) for n in range(self.workers)]
        self._tasks.append(asyncio.create_task(self.webhooks.run()))

    async def close(self) -> None:
        for task in [*self._tasks, *self._side_tasks]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._side_tasks, return_exceptions=True)
        await self._fetch.close()

    def _enqueue(self, job: Job) -> None:
        self._unfinished[job.id] = job
        if actions.needs_engine(job.action):
            self.queue.push(job.id, job.owner, job.priority)
        else:  # U1–U4 only share a file: no reason to wait behind renders
            task = asyncio.create_task(self._run(job.id))
            self._side_tasks.add(task)
            task.add_done_callback(self._side_tasks.discard)

    async def _worker(self, number: int) -> None:
        while True:
            job_id = await self.queue.get()
            try:
                await self._run(job_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker %d: job %s could not be finished", number, job_id)

    async def _run(self, job_id: str) -> None:
        self.active.add(job_id)
        try:
            job = self._unfinished.get(job_id) or await self.store.get(job_id)
            if job is None or job.status is not JobStatus.QUEUED:
                return
            job.status, job.started_at, job.attempts = JobStatus.RUNNING, utcnow(), job.attempts + 1
            await self.store.save(job, JobStatus.QUEUED)
            job = await self.runner.run(job)
        finally:
            self.active.discard(job_id)
            self._unfinished.pop(job_id, None)
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

    def _check_rate(self, ref: str, token: str | None) -> None:
        if token and (wait := self._token_rate.acquire(token_scope(token))):
            raise ServiceError(
                429,
                None,
                f"Too many requests with this API token: at most {self.settings.rate_per_token} a "
                f"minute. Try again in {math.ceil(wait)} s.",
                retryAfter=math.ceil(wait),
            )
        if (user := ref_user(ref)) and (wait := self._user_rate.acquire(owner_of(ref, token))):
            raise ServiceError(
                429,
                None,
                f"Too many requests from user {user}: at most {self.settings.rate_per_user} a minute. "
                f"Try again in {math.ceil(wait)} s.",
                retryAfter=math.ceil(wait),
            )

    async def _check_user_jobs(self, ref: str, owner: str, count: int, limit: int | None) -> None:
        """A user named in ref may have at most so many unfinished jobs (the client may ask for fewer)."""
        if not ref_user(ref):
            return
        cap = self.settings.max_jobs_per_user
        cap = min(cap, limit) if limit is not None and limit > 0 else cap
        unfinished = await self.store.count_unfinished(owner)
        if unfinished + count > cap:
            adding = f"this adds {count}" if count > 1 else "this adds one more"
            raise ServiceError(
                429, None,
                f"You have {unfinished} unfinished job{'s' * (unfinished != 1)} and {adding}; the limit "
                f"is {cap}. Wait for some to finish.",
            )  # fmt: skip

    def _check_room(self, count: int) -> None:
        if len(self.queue) + count > self.settings.queue_limit:
            raise ServiceError(429, ResultCode.QUEUE_FULL, "QUEUE_FULL")

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
        webhook = self._check_webhook(webhook)
        self._check_rate(ref, token)
        try:
            prompts = parse(msg)
            for prompt in prompts:  # an unmapped --v is an error now, not when the job runs
                choose_model(prompt, self.runner.context.models, self.runner.context.default_model)
        except PromptError as exc:
            raise ServiceError(400, exc.code, exc.message) from None
        if not ignore_prefilter:
            # what the engine will read: each expansion's text and negatives, never the raw msg
            # ({na,zz}ked expands to a banned word; a link-looking word later in the text is text)
            for prompt in prompts:
                if word := self.prefilter.find(f"{prompt.text} {prompt.negative_prompt}"):
                    raise ServiceError(400, ResultCode.BANNED_PROMPT, f"Invalid phrase: '{word}'")
        if any(p.image_urls for p in prompts) and not self.engine.capabilities.img2img:
            raise ServiceError(
                400, ResultCode.INVALID_PARAMETER,
                f"The {self.engine.capabilities.name} engine cannot start from an image; "
                "remove the image link.",
            )  # fmt: skip
        if len({url for p in prompts for url in p.image_urls}) > MAX_IMAGE_PROMPTS:
            raise ServiceError(400, ResultCode.INVALID_LINK,
                               f"At most {MAX_IMAGE_PROMPTS} image links can start a prompt.")  # fmt: skip
        owner = owner_of(ref, token)
        await self._check_user_jobs(ref, owner, len(prompts), max_unfinished)
        self._check_room(len(prompts))
        inputs = await self._fetch_inputs(prompts)
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
        await self.store.add(jobs)
        for job in jobs:
            self._enqueue(job)
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

    async def _fetch_inputs(self, prompts: list[ImaginePrompt]) -> dict[str, str]:
        """Fetch each distinct image URL once and keep it: a restart must not need the link again."""
        names: dict[str, str] = {}
        folder = self.runner.inputs_dir
        for url in dict.fromkeys(u for p in prompts for u in p.image_urls):
            try:
                data = await fetch_bytes(
                    self._fetch,
                    url,
                    max_bytes=self.settings.max_image_bytes,
                    policy=self.settings.url_policy,
                )
                async with self._decoding:  # a few at once: each may take hundreds of MB
                    image = await asyncio.to_thread(images.decode, data)
            except FetchError as exc:
                raise ServiceError(400, ResultCode.INVALID_LINK, str(exc)) from None
            except ValueError as exc:
                raise ServiceError(
                    400, ResultCode.INVALID_LINK, f"The link {url} cannot be used: {exc}."
                ) from None
            name = hashlib.sha256(data).hexdigest()[:32] + ".png"
            folder.mkdir(parents=True, exist_ok=True)
            if not (folder / name).exists():
                await asyncio.to_thread(images.save_png, image, folder / name)
            names[url] = name
        return names

    async def press(
        self,
        button_message_id: str,
        button: str,
        *,
        ref: str = "",
        webhook: str = "",
        token: str | None = None,
    ) -> Job:
        webhook = self._check_webhook(webhook)
        self._check_rate(ref, token)
        parent = await self.store.by_button_message_id(button_message_id)
        if parent is None:
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
        async with self._press_lock:  # two quick presses of one U must not both upscale
            if button in actions.TILE_BUTTONS and (
                earlier := await self.store.pressed(parent.id, button)
            ):
                raise ServiceError(
                    409,
                    ResultCode.ALREADY_REQUESTED_UPSCALE,
                    "ALREADY_REQUESTED_UPSCALE",
                    messageId=earlier.id,
                )
            if actions.needs_engine(button):
                self._check_room(1)
            tile = actions.TILE_BUTTONS.get(button)
            job = self._new_job(
                action=button,
                owner=owner_of(ref, token) if ref else parent.owner,
                content=parent.content,
                prompt=ImaginePrompt.from_dict(parent.prompt),
                ref=ref or parent.ref,
                webhook=webhook,
                parent=parent,
                tile=tile,
                # 🔄 re-rolls the whole prompt, image prompts (and a blend's images) included.
                inputs=parent.inputs if button == "🔄" else None,
            )
            await self.store.add([job])
        self._enqueue(job)
        return job

    async def message(self, job_id: str, expire_mins: float = 12.0) -> dict[str, Any]:
        # Polls are most of the traffic: unfinished jobs are answered from memory, finished
        # ones (immutable from then on) from a small cache, and only the rest from SQLite.
        job = self._unfinished.get(job_id)
        if job is None:
            if (cached := self._finished.get(job_id)) is not None:
                self._finished.move_to_end(job_id)
                return cached
            job = await self.store.get(job_id)
            if job is None:
                raise ServiceError(404, None, f"No message has id {job_id!r}.")
        if job.status.finished:
            answer = {"progress": 100, "response": completed(job, self.settings.base_url)}
            self._finished[job_id] = answer
            if len(self._finished) > FINISHED_CACHE:
                self._finished.popitem(last=False)
            return answer
        if utcnow() - job.created_at > timedelta(minutes=expire_mins):
            return {"progress": "incomplete"}
        state = self.runner.states.get(job.id)
        return running(job, state, self.queue.position(job.id), self.settings.base_url)

    async def info(self, user: str | None = None, token: str | None = None) -> dict[str, Any]:
        caps = self.engine.capabilities
        data: dict[str, Any] = {
            "success": True,
            "version": __version__,
            "engine": caps.name,
            "placeholder": caps.is_placeholder,
            "queued": len(self.queue),
            "running": len(self.active),
            "queueLimit": self.settings.queue_limit,
            "maxConcurrent": self.workers,
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


def _content(prompt: ImaginePrompt, msg: str, count: int) -> str:
    """The prompt as the user wrote it; each permutation shows its own expansion."""
    if count == 1:
        words = msg.split()
        while words and is_link(words[0]):  # the leading image links are not the prompt
            words.pop(0)
        return " ".join(words)
    return prompt.normalised()
