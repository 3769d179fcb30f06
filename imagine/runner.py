"""Carrying out one job: load its inputs, call the engine, store the images, finish the job.

Every job ends: done, or failed with a result code within ``job_timeout``. The engine runs
off the event loop; a timeout cancels it through the progress callback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import io
import logging
from collections.abc import Callable
from typing import Any

from PIL import Image

from imagine import actions, describing, images
from imagine.codes import ResultCode
from imagine.engines.base import (
    Engine,
    EngineCancelled,
    EngineError,
    GenerateRequest,
    ProgressCallback,
)
from imagine.errors import DISK_FULL
from imagine.inputs import input_key
from imagine.jobs import Job, JobStatus, utcnow
from imagine.previews import Previews, RunState, image_key
from imagine.prompt import (
    ImaginePrompt,
    PromptError,
    check_references,
    ignored_parameters,
    image_strength,
)
from imagine.results import Results, checked_single, checked_tiles, split_inputs
from imagine.storage import ImageStorage, StorageError
from imagine.store import Fenced, JobStore, Lease, StoreUnavailable

log = logging.getLogger(__name__)


class Runner:
    def __init__(
        self,
        store: JobStore,
        engine: Engine,
        storage: ImageStorage,
        context: actions.PlanContext,
        timeout: float,
        webhook_for: Callable[[Job], tuple[str, bytes] | None] = lambda job: None,
    ) -> None:
        self.store = store
        self.webhook_for = webhook_for
        """The webhook (url, body) a finished job owes, saved in the same transaction as the job."""
        self.engine = engine
        self.storage = storage
        self.context = context
        self.timeout = timeout
        self.states: dict[str, RunState] = {}
        self.previews = Previews(storage)
        self.results = Results(storage, lambda: self.context)
        self.unsaved: dict[str, tuple[Job, JobStatus, Lease | None]] = {}
        """Jobs that ended while the database could not be written, with the status it still
        has for them: answered from here, and saved as soon as it can be written again."""

    def _progress(self, job_id: str, state: RunState) -> ProgressCallback:
        return self.previews.callback(job_id, state)

    async def run(self, job: Job, lease: Lease | None = None) -> Job:
        """Run ``job`` (already marked running, held by ``lease``) to its end and save it; never
        raises for the job's own failures."""
        state = self.states.setdefault(job.id, RunState(job.id))
        try:
            try:
                async with asyncio.timeout(self.timeout):
                    result = await self._execute(job, self._progress(job.id, state))
            finally:
                # No preview may land after this (in a folder a failure or a cancel removes):
                # the late ones are dropped, the ones being written are waited for.
                await self.previews.settle(state)
        except TimeoutError:
            state.cancelled.set()
            log.warning("job %s took longer than %.0f s and was stopped", job.id, self.timeout)
            return await self._fail(
                job,
                ResultCode.BOT_TOOK_TOO_LONG_TO_PROCESS_YOUR_COMMAND,
                f"Generation took longer than {self.timeout:.0f} seconds and was stopped.",
                lease,
            )
        except asyncio.CancelledError:
            state.cancelled.set()  # shutdown: the job stays running and resumes on the next start
            raise
        except EngineCancelled:
            if not state.lost:
                raise
            self._log_stop(state)
            return job
        except EngineError as exc:
            log.warning("job %s failed: %s (%s)", job.id, exc.message, exc.code)
            return await self._fail(job, exc.code, exc.message, lease)
        except StorageError as exc:
            log.error("job %s: its images could not be stored: %s", job.id, exc)
            why = (
                f"{DISK_FULL}, so this job's images could not be saved. Ask the server's "
                "operator to free some space, then try again."
                if exc.disk_full
                else f"The images could not be saved ({exc}); the error is in the service's log."
            )
            return await self._fail(job, ResultCode.INTERNAL_ERROR, why, lease)
        except Exception:
            log.exception("job %s failed in the engine", job.id)
            return await self._fail(
                job,
                ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND,
                "The image engine failed on this job; the error is in the service's log.",
                lease,
            )
        finally:
            self.states.pop(job.id, None)
        if state.lost:
            self._log_stop(state)
            return job
        job.result.update(result)
        job.status, job.finished_at = JobStatus.DONE, utcnow()
        job.progress, job.preview = 1.0, None
        await self.finish(job, JobStatus.RUNNING, lease)
        log.info("job %s done (%s)", job.id, job.action)
        return job

    @staticmethod
    def _log_stop(state: RunState) -> None:
        if state.cancelled_here:
            log.info("job %s was cancelled; its engine stopped", state.job_id)
        else:
            log.warning("job %s: another worker took it over; this worker stops", state.job_id)

    async def _fail(
        self, job: Job, code: ResultCode, message: str, lease: Lease | None = None
    ) -> Job:
        job.status, job.finished_at, job.error_code, job.error = (
            JobStatus.FAILED,
            utcnow(),
            code,
            message,
        )
        job.preview = None
        if await self.finish(job, JobStatus.RUNNING, lease):
            # A failed job's files (previews, a half-written grid) are never shown: free the
            # space, once the failure is saved (a worker that lost the job must not delete the
            # files of the one that has it now).
            await self._remove_images(job.id)
        return job

    async def _remove_images(self, job_id: str) -> None:
        try:
            await self.storage.delete_prefix(image_key(job_id, ""))
        except StorageError as exc:
            log.warning("job %s: its images could not be removed: %s", job_id, exc)

    async def finish(self, job: Job, previous: JobStatus, lease: Lease | None = None) -> bool:
        """Save a done or failed job together with the webhook it owes; whether it was saved.
        When the database cannot be written, the job is saved later: a full disk fails it with
        a sentence now; an unreachable database keeps its result until the database is back.
        A worker that lost its lease saves nothing."""
        try:
            await self._save(job, previous, lease)
        except StoreUnavailable as exc:
            await self.end_unsaved(job, previous, exc, lease)
            return False
        except Fenced:
            log.warning("job %s: its lease was lost; another worker's result stands", job.id)
            return False
        return True

    async def _save(self, job: Job, previous: JobStatus, lease: Lease | None = None) -> None:
        hook = self.webhook_for(job)
        await self.store.save(job, previous, None if hook is None else (*hook, 0.0), lease)

    async def end_unsaved(
        self, job: Job, previous: JobStatus, exc: StoreUnavailable, lease: Lease | None = None
    ) -> None:
        """End ``job`` (still ``previous`` in the database), to be saved when possible."""
        log.error(
            "job %s could not be saved (%s); it is saved when the database allows", job.id, exc
        )
        if exc.disk_full:  # nothing more can be written: the result did not happen
            if job.status is JobStatus.DONE:
                await self._remove_images(job.id)
            job.status, job.finished_at = JobStatus.FAILED, utcnow()
            job.error_code = ResultCode.INTERNAL_ERROR
            job.error = (
                f"{DISK_FULL}, so this job's result could not be saved. Ask the server's "
                "operator to free some space, then try again."
            )
            job.result = {"seeds": job.result.get("seeds", [])}
        self.unsaved[job.id] = (job, previous, lease)

    def unsaved_job(self, job_id: str) -> Job | None:
        entry = self.unsaved.get(job_id)
        return None if entry is None else entry[0]

    async def save_unsaved(self) -> bool:
        """Try to save the jobs in :attr:`unsaved`; whether any was saved."""
        saved = False
        for job_id, (job, previous, lease) in list(self.unsaved.items()):
            try:
                await self._save(job, previous, lease)
            except StoreUnavailable:
                return saved  # still not writable: try again later
            except RuntimeError:  # it changed in the database meanwhile: nothing to save
                log.warning("job %s changed while it waited to be saved", job_id)
            else:
                log.info("job %s saved now that the database can be written", job_id)
                saved = True
            self.unsaved.pop(job_id, None)
        return saved

    async def _load(self, key: str, what: str) -> Image.Image:
        data = await self.storage.get(key)
        if data is None:
            raise EngineError(
                ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND,
                f"The {what} this job starts from is no longer stored; it may have been deleted.",
            )
        return await asyncio.to_thread(images.open_rgb, data)

    async def _source(self, parent: Job, tile: int | None) -> Image.Image:
        files = parent.result.get("images", {})
        name = files["tiles"][tile] if tile is not None else files["image"]
        return await self._load(image_key(parent.id, name), "image")

    async def _execute(self, job: Job, progress: Any) -> dict[str, Any]:
        seeds = tuple(int(s) for s in job.result.get("seeds", ()))
        prompt = ImaginePrompt.from_dict(job.prompt)
        if job.action in ("describe", "shorten"):
            if job.action == "describe":
                return await self._describe(job, progress)
            return await describing.shorten(self.engine, self.context.capabilities, job.content)
        parent = await self.store.get(job.parent_id) if job.parent_id else None
        action = actions.carried_out(job.action)  # a Redo's parent is the upscale's source
        if job.action in actions.TILE_BUTTONS:
            assert parent is not None
            return await self.results.copy_tile(job, parent)
        if action in actions.UPSCALE_FACTORS:
            assert parent is not None
            source = await self._source(parent, None)
            upscaled = await self.engine.upscale(source, actions.UPSCALE_FACTORS[action], progress)
            return await self.results.single(job, await asyncio.to_thread(checked_single, upscaled))
        images_in, references = split_inputs(job.inputs, prompt)
        if parent is None or actions.fresh_render(job.action):
            request = actions.generation(prompt, self.context, seeds)
            if images_in:
                size = (request.width, request.height)
                loaded = [await self._load(input_key(n), "image prompt") for n in images_in]
                init = await asyncio.to_thread(images.blend, loaded, size)
                strength = image_strength(prompt)
                request = dataclasses.replace(request, init_image=init, strength=strength)
        else:
            tile = actions.VARIATION_BUTTONS.get(job.action)
            source = await self._source(parent, tile)
            mask = None
            if job.action == "Vary (Region)":
                mask = await self._load_mask(job)
            aspect = None
            if job.action == "Custom Zoom":  # a new --ar reshapes the canvas; else the source's
                before = ImaginePrompt.from_dict(parent.prompt).aspect
                aspect = prompt.aspect if prompt.aspect != before else None
            request = await asyncio.to_thread(
                functools.partial(
                    actions.from_image, job.action, prompt, source, self.context, seeds,
                    mask=mask, aspect=aspect, vary=job.result.get("vary", "strong"),
                )
            )  # fmt: skip
        request = await self._with_references(job, prompt, request, references)
        tiles = await self.engine.generate(request, progress)
        checked = await asyncio.to_thread(checked_tiles, tiles, request)
        if action in (actions.CREATIVE, actions.ENHANCE):  # one image, re-rendered larger
            result = await self.results.single(job, checked[0])
        else:
            result = await self.results.grid(job, request, checked)
        caps = self.context.capabilities_for(job)
        if ignored := ignored_parameters(prompt, caps, request):
            result["ignored"] = ignored
        if action == actions.ENHANCE:
            result["settings"] = actions.describe(request, caps)
        return result

    async def _with_references(
        self, job: Job, prompt: ImaginePrompt, request: GenerateRequest, names: list[str]
    ) -> GenerateRequest:
        """``request`` with the ``--sref``/``--oref`` images the job keeps (after its other
        inputs, in the prompt's order), on an engine that can use them."""
        if not prompt.references:
            return request
        try:
            check_references(prompt, self.context.capabilities_for(job))
        except PromptError as exc:
            raise EngineError(exc.code, exc.message) from None
        if len(names) != len(prompt.references):
            raise EngineError(
                ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND,
                "The reference images (--sref, --oref) of this job were not kept; send the "
                "prompt again.",
            )
        loaded = [await self._load(input_key(name), "reference image") for name in names]
        styles = len(prompt.style_refs)
        return dataclasses.replace(
            request,
            style_images=tuple(loaded[:styles]),
            style_weight=prompt.style_weight,
            omni_image=loaded[styles] if prompt.omni_ref else None,
            omni_weight=prompt.omni_weight,
        )

    async def _load_mask(self, job: Job) -> Image.Image:
        if not job.inputs:
            raise EngineError(
                ResultCode.INVALID_PARAMETER, "Vary (Region) needs a mask of the area to repaint."
            )
        data = await self.storage.get(input_key(job.inputs[0]))
        if data is None:
            raise EngineError(
                ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND,
                "The mask this job repaints with is no longer stored.",
            )
        return await asyncio.to_thread(lambda: Image.open(io.BytesIO(data)).copy())

    async def _describe(self, job: Job, progress: Any) -> dict[str, Any]:
        if not job.inputs:
            raise EngineError(ResultCode.INVALID_PARAMETER, "There is no image to describe.")
        image = await self._load(input_key(job.inputs[0]), "image")
        return await describing.describe(self.engine, self.context.capabilities, image, progress)
