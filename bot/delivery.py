"""From an accepted job to a posted result: poll the service, show progress, post the image.

Every job the service accepted is written to the :class:`PendingStore` first and removed only
after its result or its failure was posted, so a job survives a bot restart (resumed in
``setup_hook``). Progress edits are paced to one per ``edit_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import discord

from bot.attachments import ImageKind, UnreadableImage, Upload, prepare, preview
from bot.client import ImagineClient, ImagineError, JobProgress, JobResult, ServiceUnavailable
from bot.errors import TOO_LONG, explain_failure
from bot.pending import PendingJob, PendingStore
from bot.posted import PostedResults
from bot.progress import (
    EditPacer,
    blocked_note,
    display_prompt,
    headline,
    ignored_note,
    no_answer_note,
    not_started_note,
    progress_text,
    prompts_text,
)
from bot.settings import BotSettings
from bot.surface import JobSurface, Surface

log = logging.getLogger(__name__)

ViewFactory = Callable[[str, Sequence[str]], discord.ui.View]
"""(buttonMessageId, button labels) → the view with the result's buttons."""

_DOWNLOAD_ATTEMPTS = 3
LOST = "The image service lost track of this job. Try again."
CANCELLED = "CANCELLED"
"""The result code of a job its owner or a moderator cancelled."""


def _failed(code: str, error: str = "") -> JobResult:
    return JobResult("failed", "imagine", code, error, None, (), (), "", ())


NEVER_INCOMPLETE = 7 * 24 * 60.0
"""expireMins for polls: the bot decides itself when it stops waiting."""
FINISHING_POLL = 0.05
ACCEPT_GRACE = 5.0
"""Seconds a stop waits for commands still storing their jobs and making their messages."""
"""Seconds between polls once the engine is done and the service is storing the images."""


def _next_poll(state: JobProgress | None, interval: float) -> float:
    # At 99 % the render is over and the result lands within ~100 ms: look closely, so the
    # grid is posted at once rather than up to a whole interval later.
    if state is not None and state.status == "running" and state.progress >= 99:
        return min(interval, FINISHING_POLL)
    return interval


class Deliveries:
    def __init__(
        self,
        client: discord.Client,
        imagine: ImagineClient,
        store: PendingStore,
        settings: BotSettings,
        view_factory: ViewFactory,
        surfaces: Callable[[PendingJob], Surface] | None = None,
        posted: PostedResults | None = None,
    ) -> None:
        self._client = client
        self._imagine = imagine
        self._store = store
        self._settings = settings
        self._view_factory = view_factory
        self._surfaces = surfaces or (lambda job: JobSurface(client, job))
        self._posted = posted
        """Where each posted result's job is written down (for ✉️ and Show job)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._accepting: set[asyncio.Task[Any]] = set()
        """Commands between the service's answer and their delivery's start: a stop waits for
        them, so none is cut off with its stores already closed."""
        self._users: Counter[int] = Counter()
        """Unfinished deliveries per user, for the per-user job limit."""
        self._closed = False

    def in_flight(self, user_id: int) -> int:
        return self._users[user_id]

    async def accept(
        self,
        jobs: Sequence[PendingJob],
        place: Callable[[int, PendingJob], Awaitable[int | PendingJob]],
    ) -> None:
        """Remember every job the service accepted before anything else can fail (a crash or a
        Discord error now loses none of them), then give each its progress message (``place``
        returns its id, or the job as placed: in a DM, say) and deliver it. A job whose message
        could not be made is still delivered: its result is posted as a new message."""
        current = asyncio.current_task()
        assert current is not None  # always called from a task (a command's)
        self._accepting.add(current)
        try:
            for job in jobs:
                await self._store.put(job)
            started = 0
            try:
                for index, job in enumerate(jobs):
                    placed = await place(index, job)
                    if isinstance(placed, int):
                        placed = dataclasses.replace(job, message_id=placed)
                    await self.start(placed)
                    started += 1
            finally:
                for job in jobs[started:]:
                    self.resume(job)
        finally:
            self._accepting.discard(current)

    async def start(self, job: PendingJob) -> None:
        """Remember the job (so a restart resumes it), then deliver it in the background."""
        await self._store.put(job)
        self.resume(job)

    def resume(self, job: PendingJob) -> None:
        if self._closed:
            # A command finishing while the bot stops: the stored row brings it back next start.
            log.info(
                "job %s: accepted during shutdown; it is delivered on the next start", job.job_id
            )
            return
        self._users[job.user_id] += 1
        task = asyncio.create_task(self._deliver(job), name=f"deliver-{job.job_id}")
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._finished(t, job.user_id))

    def _finished(self, task: asyncio.Task[None], user_id: int) -> None:
        self._tasks.discard(task)
        self._users[user_id] -= 1
        if self._users[user_id] <= 0:
            del self._users[user_id]

    async def wait_idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        """Stop polling; the store keeps every unfinished job for the next start."""
        self._closed = True
        if self._accepting:  # let commands in the middle of accepting store their jobs
            await asyncio.wait(list(self._accepting), timeout=ACCEPT_GRACE)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _deliver(self, job: PendingJob) -> None:
        surface = self._surfaces(job)
        try:
            result = await self._wait(job, surface)
            if result.failed and result.content == CANCELLED:
                log.info("job %s: cancelled", job.job_id)
                await surface.cancelled(
                    f"{headline(job.prompt, job.user_id, job.button)} (Cancelled)"
                )
            elif result.failed:
                log.info("job %s: failed (%s) %s", job.job_id, result.content, result.error)
                await surface.fail(explain_failure(result))
            else:
                await self._post(job, surface, result)
        except asyncio.CancelledError:
            log.info(
                "job %s: delivery paused for shutdown; it resumes on the next start", job.job_id
            )
            raise
        except Exception:
            log.exception("job %s: could not be delivered", job.job_id)
            try:
                await surface.fail(
                    "The bot could not post this result. Try again; the error was logged."
                )
            except Exception:
                log.exception("job %s: could not tell the user either", job.job_id)
        await self._store.remove(job.job_id)

    async def _wait(self, job: PendingJob, surface: Surface) -> JobResult:
        # The wait counts from when the job starts rendering: a long queue is not "too long"
        # (the service ends every running job within its own timeout anyway). A job that never
        # starts, or a service that stops answering, is never given up on: the job stays in the
        # store and its message says so once it has waited ``queue_notice``.
        deadline: float | None = None
        pacer = EditPacer(self._settings.edit_interval)
        pacer.mark()  # the message was just created with its first status
        shown: tuple[str, str | None] | None = None
        last: JobProgress | None = None
        silent_since: float | None = None
        noted = ""
        while True:
            try:
                state = await self._imagine.message(job.job_id, NEVER_INCOMPLETE)
            except ServiceUnavailable as exc:
                if silent_since is None:
                    log.warning("job %s: polling failed, retrying: %s", job.job_id, exc)
                    silent_since = time.time()
                state = None
            except ImagineError as exc:
                log.warning("job %s: the service no longer knows it (%s)", job.job_id, exc.message)
                return _failed("INTERNAL_ERROR", LOST)
            else:
                if silent_since is not None:
                    log.info("job %s: the image service answers again", job.job_id)
                silent_since = None
            if isinstance(state, JobResult):
                return state
            if isinstance(state, JobProgress):
                last = state
            if deadline is None and last is not None and last.status == "running":
                deadline = time.time() + self._settings.job_wait
            if deadline is not None and time.time() > deadline:
                return _failed("BOT_TOOK_TOO_LONG_TO_PROCESS_YOUR_COMMAND", TOO_LONG)
            note = self._stuck_note(job, last, silent_since)
            if note != noted:
                if note:
                    log.warning("job %s: %s (still waiting)", job.job_id, note.strip())
                noted = note
            if last is not None or note:
                text = progress_text(job.prompt, job.user_id, job.button, last) + note
                preview_url = last.preview_url if last is not None else None
                if (text, preview_url) != shown and pacer.ready():
                    image = None
                    if preview_url and (shown is None or shown[1] != preview_url):
                        image = await self._preview(job, preview_url)
                    await surface.show_progress(text, image)
                    shown = (text, preview_url)
                    pacer.mark()
            await asyncio.sleep(_next_poll(state, self._settings.poll_interval))

    def _stuck_note(
        self, job: PendingJob, last: JobProgress | None, silent_since: float | None
    ) -> str:
        """A sentence for a job that has waited too long to start, or "" when it has not."""
        limit, now = self._settings.queue_notice, time.time()
        if silent_since is not None and now - silent_since >= limit:
            return no_answer_note(limit)
        if last is not None and last.status == "queued" and now - job.created >= limit:
            return not_started_note(limit)
        return ""

    async def _preview(self, job: PendingJob, url: str) -> Upload | None:
        try:
            return await preview(await self._imagine.download(url), job.job_id)
        except ServiceUnavailable as exc:
            log.info("job %s: preview unavailable: %s", job.job_id, exc)
            return None

    async def _remember(self, message_id: int, job: PendingJob) -> None:
        if self._posted is None:
            return
        try:
            await self._posted.add(message_id, job.job_id, job.user_id)
        except Exception as exc:  # the result is posted: only Show job will not know it
            log.warning("job %s: could not note message %s: %s", job.job_id, message_id, exc)

    async def _post(self, job: PendingJob, surface: Surface, result: JobResult) -> None:
        if result.prompts:  # a /describe's or a /shorten's: prompts to pick from, no image
            view = self._view_factory(result.button_message_id, result.buttons)
            content = prompts_text(headline(job.prompt, job.user_id, job.button), result.prompts)
            message_id = await surface.finish(content, None, view)
            await self._remember(message_id, job)
            log.info("job %s: posted as message %s (%d prompts)", job.job_id, message_id,
                     len(result.prompts))  # fmt: skip
            return
        assert result.image_url is not None
        kind = ImageKind.SINGLE if result.type == "upscale" else ImageKind.GRID
        for attempt in range(1, _DOWNLOAD_ATTEMPTS + 1):
            try:
                data = await self._imagine.download(result.image_url)
                break
            except ServiceUnavailable as exc:
                if attempt == _DOWNLOAD_ATTEMPTS:
                    raise
                log.warning("job %s: download failed (%s), retrying", job.job_id, exc)
                await asyncio.sleep(self._settings.poll_interval * attempt)
        prompt = display_prompt(result.content, job.prompt)
        try:
            upload = await prepare(data, kind, self._settings.upload_limit, prompt, job.job_id)
        except UnreadableImage as exc:
            log.error("job %s: %s", job.job_id, exc)
            await surface.fail("The image service sent an image the bot cannot read. Try again.")
            return
        view = self._view_factory(result.button_message_id, result.buttons)
        content = (
            headline(prompt, job.user_id, job.button)
            + blocked_note(result.blocked)
            + ignored_note(result.ignored)
        )
        message_id = await surface.finish(content, upload, view)
        await self._remember(message_id, job)
        log.info(
            "job %s: posted as message %s (%s, %d bytes, buttons %s)",
            job.job_id,
            message_id,
            upload.filename,
            len(upload.data),
            ",".join(result.buttons),
        )
