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
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
from imagine.prompt import ImaginePrompt, image_strength
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
            async with asyncio.timeout(self.timeout):
                result = await self._execute(job, self._progress(job.id, state))
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
            log.warning("job %s: another worker took it over; this worker stops", job.id)
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
            return job
        job.result.update(result)
        job.status, job.finished_at = JobStatus.DONE, utcnow()
        job.progress, job.preview = 1.0, None
        await self.finish(job, JobStatus.RUNNING, lease)
        log.info("job %s done (%s)", job.id, job.action)
        return job

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
        if job.action in actions.TILE_BUTTONS:
            assert parent is not None
            return await self._copy_tile(job, parent)
        if job.action in actions.UPSCALE_FACTORS:
            assert parent is not None
            source = await self._source(parent, None)
            upscaled = await self.engine.upscale(
                source, actions.UPSCALE_FACTORS[job.action], progress
            )
            return await self._store_single(job, await asyncio.to_thread(_checked_single, upscaled))
        if parent is None or actions.fresh_render(job.action):
            request = actions.generation(prompt, self.context, seeds)
            if job.inputs:
                size = (request.width, request.height)
                loaded = [await self._load(input_key(n), "image prompt") for n in job.inputs]
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
                    mask=mask, aspect=aspect,
                )
            )  # fmt: skip
        tiles = await self.engine.generate(request, progress)
        checked = await asyncio.to_thread(_checked_tiles, tiles, request)
        if job.action == actions.CREATIVE:  # one image, re-rendered at twice the size
            return await self._store_single(job, checked[0])
        return await self._store_grid(job, request, checked)

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

    async def _copy_tile(self, job: Job, parent: Job) -> dict[str, Any]:
        assert job.tile is not None
        tile = parent.result["images"]["tiles"][job.tile]
        settings = parent.result.get("settings", {})  # a grid's tiles share the request's size
        size = (int(settings.get("width", 0)), int(settings.get("height", 0)))
        if not all(size):
            size = (await self._source(parent, job.tile)).size
        await self.storage.copy(image_key(parent.id, tile), image_key(job.id, "image.png"))
        return {
            "images": {"image": "image.png"},
            "width": size[0],
            "height": size[1],
            "buttons": actions.buttons_for(
                "upscale", self.context.capabilities_for(job), size, job.action
            ),
        }

    async def _store_single(self, job: Job, image: Image.Image) -> dict[str, Any]:
        data = await asyncio.to_thread(images.png_bytes, image)
        await self.storage.put(image_key(job.id, "image.png"), data, "image/png")
        return {
            "images": {"image": "image.png"},
            "width": image.width,
            "height": image.height,
            "buttons": actions.buttons_for(
                "upscale", self.context.capabilities_for(job), image.size, job.action
            ),
        }

    async def _store_grid(
        self, job: Job, request: GenerateRequest, tiles: list[Image.Image]
    ) -> dict[str, Any]:
        def encode() -> list[bytes]:
            # Pillow's encoders release the GIL: tiles and grid encode side by side.
            with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
                grid = pool.submit(lambda: images.jpeg_bytes(images.compose_grid(tiles)))
                pngs = [pool.submit(images.png_bytes, tile) for tile in tiles]
                return [future.result() for future in [grid, *pngs]]

        grid, *pngs = await asyncio.to_thread(encode)
        # the tiles first, the grid last: a grid that is there means its tiles are too
        await asyncio.gather(*(
            self.storage.put(image_key(job.id, f"{i}.png"), data, "image/png")
            for i, data in enumerate(pngs)
        ))  # fmt: skip
        await self.storage.put(image_key(job.id, "grid.jpg"), grid, "image/jpeg")
        caps = self.context.capabilities_for(job)
        # Tiles the engine's safety checker withheld: no U or V for them (nothing to build on).
        blocked = [n for n, tile in enumerate(tiles, 1) if images.BLOCKED in tile.info]
        buttons = actions.buttons_for(job.type, caps, (request.width, request.height), job.action)
        result: dict[str, Any] = {
            "images": {"grid": "grid.jpg", "tiles": [f"{i}.png" for i in range(len(tiles))]},
            "buttons": [b for b in buttons if _tile_of(b) not in blocked],
            "settings": actions.describe(request, caps),
        }
        if blocked:
            result["blocked"] = blocked
        return result


def _tile_of(button: str) -> int | None:
    """The tile (1-4) a U or V button works on; None for the others."""
    tile = actions.TILE_BUTTONS.get(button, actions.VARIATION_BUTTONS.get(button))
    return None if tile is None else tile + 1


def _checked_tiles(tiles: object, request: GenerateRequest) -> list[Image.Image]:
    expected = len(request.seeds)
    if (
        not isinstance(tiles, list)
        or len(tiles) != expected
        or not all(isinstance(t, Image.Image) for t in tiles)
    ):
        raise EngineError(
            ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND,
            f"The engine returned something other than {expected} images.",
        )
    size = (request.width, request.height)
    rgb = [t if t.mode == "RGB" else t.convert("RGB") for t in tiles]
    return [t if t.size == size else t.resize(size) for t in rgb]


def _checked_single(image: object) -> Image.Image:
    if not isinstance(image, Image.Image) or image.width < 1 or image.height < 1:
        raise EngineError(
            ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND, "The engine's upscaler returned no image."
        )
    return image.convert("RGB")
