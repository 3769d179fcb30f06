"""Carrying out one job: load its inputs, call the engine, store the images, finish the job.

Every job ends: done, or failed with a result code within ``job_timeout``. The engine runs
off the event loop; a timeout cancels it through the progress callback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from imagine import actions, images
from imagine.codes import ResultCode
from imagine.engines.base import Engine, EngineCancelled, EngineError, GenerateRequest
from imagine.errors import DISK_FULL, is_disk_full
from imagine.jobs import Job, JobStatus, utcnow
from imagine.prompt import ImaginePrompt, image_strength
from imagine.store import JobStore, StoreUnavailable

log = logging.getLogger(__name__)

PREVIEW_EVERY = 1.0  # seconds between preview files
PREVIEW_SIDE = 384


@dataclass
class RunState:
    """What a running job shows to pollers; written from the engine's thread."""

    job_id: str
    fraction: float = 0.0
    preview: str | None = None
    previews: int = 0
    last_preview: float = 0.0
    cancelled: threading.Event = field(default_factory=threading.Event)


class Runner:
    def __init__(
        self,
        store: JobStore,
        engine: Engine,
        data_dir: Path,
        context: actions.PlanContext,
        timeout: float,
        webhook_for: Callable[[Job], tuple[str, bytes] | None] = lambda job: None,
    ) -> None:
        self.store = store
        self.webhook_for = webhook_for
        """The webhook (url, body) a finished job owes, saved in the same transaction as the job."""
        self.engine = engine
        self.images_dir = data_dir / "images"
        self.inputs_dir = data_dir / "inputs"
        self.context = context
        self.timeout = timeout
        self.states: dict[str, RunState] = {}
        self.unsaved: dict[str, tuple[Job, JobStatus]] = {}
        """Jobs that ended while the database could not be written, with the status it still
        has for them: answered from here, and saved as soon as it can be written again."""

    def job_dir(self, job_id: str) -> Path:
        return self.images_dir / job_id

    def _progress(self, job_id: str, state: RunState) -> Any:
        def progress(fraction: float, preview: Image.Image | None = None) -> None:
            if state.cancelled.is_set():
                raise EngineCancelled(job_id)
            state.fraction = max(state.fraction, min(1.0, float(fraction)))
            now = time.monotonic()
            if preview is not None and now - state.last_preview >= PREVIEW_EVERY:
                state.last_preview = now
                name = f"preview-{state.previews}.jpg"
                state.previews += 1
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:  # an engine's worker thread: encode right here
                    self._write_preview(state, preview, name)
                else:  # a remote engine calls from the event loop: encode off it
                    loop.run_in_executor(None, self._write_preview, state, preview, name)

        return progress

    def _write_preview(self, state: RunState, preview: Image.Image, name: str) -> None:
        try:
            small = preview.copy()
            small.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
            images.save_jpeg(small, self.job_dir(state.job_id) / name, quality=80)
        except Exception:  # a preview is a nicety: never let it fail the job
            log.warning(
                "job %s: preview %s could not be written", state.job_id, name, exc_info=True
            )
            return
        state.preview = name  # only once the file is there

    async def run(self, job: Job) -> Job:
        """Run ``job`` (already marked running) to its end and save it; never raises for the job's own failures."""
        state = self.states.setdefault(job.id, RunState(job.id))
        try:
            async with asyncio.timeout(self.timeout):
                self.job_dir(job.id).mkdir(parents=True, exist_ok=True)
                result = await self._execute(job, self._progress(job.id, state))
        except TimeoutError:
            state.cancelled.set()
            log.warning("job %s took longer than %.0f s and was stopped", job.id, self.timeout)
            return await self._fail(
                job,
                ResultCode.BOT_TOOK_TOO_LONG_TO_PROCESS_YOUR_COMMAND,
                f"Generation took longer than {self.timeout:.0f} seconds and was stopped.",
            )
        except asyncio.CancelledError:
            state.cancelled.set()  # shutdown: the job stays running and resumes on the next start
            raise
        except EngineError as exc:
            log.warning("job %s failed: %s (%s)", job.id, exc.message, exc.code)
            return await self._fail(job, exc.code, exc.message)
        except OSError as exc:
            if not is_disk_full(exc):
                log.exception("job %s: its images could not be saved", job.id)
                return await self._fail(
                    job,
                    ResultCode.INTERNAL_ERROR,
                    f"The images could not be saved ({exc.strerror or exc}); the error is in "
                    "the service's log.",
                )
            log.error("job %s failed: the disk of %s is full", job.id, self.images_dir)
            return await self._fail(
                job,
                ResultCode.INTERNAL_ERROR,
                f"{DISK_FULL}, so this job's images could not be saved. Ask the server's "
                "operator to free some space, then try again.",
            )
        except Exception:
            log.exception("job %s failed in the engine", job.id)
            return await self._fail(
                job,
                ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND,
                "The image engine failed on this job; the error is in the service's log.",
            )
        finally:
            self.states.pop(job.id, None)
        job.result.update(result)
        job.status, job.finished_at = JobStatus.DONE, utcnow()
        await self.finish(job, JobStatus.RUNNING)
        log.info("job %s done (%s)", job.id, job.action)
        return job

    async def _fail(self, job: Job, code: ResultCode, message: str) -> Job:
        job.status, job.finished_at, job.error_code, job.error = (
            JobStatus.FAILED,
            utcnow(),
            code,
            message,
        )
        # A failed job's files (previews, a half-written grid) are never shown: free the space.
        await asyncio.to_thread(shutil.rmtree, self.job_dir(job.id), True)
        await self.finish(job, JobStatus.RUNNING)
        return job

    async def finish(self, job: Job, previous: JobStatus) -> None:
        """Save a done or failed job together with the webhook it owes. When the database cannot
        be written, the job fails with a sentence that says why and is saved later."""
        try:
            await self._save(job, previous)
        except StoreUnavailable as exc:
            await self.end_unsaved(job, previous, exc)

    async def _save(self, job: Job, previous: JobStatus) -> None:
        hook = self.webhook_for(job)
        await self.store.save(job, previous, None if hook is None else (*hook, time.time()))

    async def end_unsaved(self, job: Job, previous: JobStatus, exc: StoreUnavailable) -> None:
        """End ``job`` (still ``previous`` in the database) as failed, to be saved when possible."""
        log.error(
            "job %s could not be saved (%s); it is saved when the database allows", job.id, exc
        )
        if job.status is JobStatus.DONE:  # its result cannot be kept, so it did not happen
            await asyncio.to_thread(shutil.rmtree, self.job_dir(job.id), True)
        job.status, job.finished_at = JobStatus.FAILED, utcnow()
        job.error_code = ResultCode.INTERNAL_ERROR
        job.error = (
            f"{DISK_FULL}, so this job's result could not be saved. Ask the server's operator "
            "to free some space, then try again."
            if exc.disk_full
            else f"{exc} Try again later."
        )
        job.result = {"seeds": job.result.get("seeds", [])}
        self.unsaved[job.id] = (job, previous)

    def unsaved_job(self, job_id: str) -> Job | None:
        entry = self.unsaved.get(job_id)
        return None if entry is None else entry[0]

    async def save_unsaved(self) -> bool:
        """Try to save the jobs in :attr:`unsaved`; whether any was saved."""
        saved = False
        for job_id, (job, previous) in list(self.unsaved.items()):
            try:
                await self._save(job, previous)
            except StoreUnavailable:
                return saved  # still not writable: try again later
            except RuntimeError:  # it changed in the database meanwhile: nothing to save
                log.warning("job %s changed while it waited to be saved", job_id)
            else:
                log.info("job %s saved now that the database can be written", job_id)
                saved = True
            self.unsaved.pop(job_id, None)
        return saved

    def load_input(self, name: str) -> Image.Image:
        with Image.open(self.inputs_dir / name) as opened:
            return opened.convert("RGB")

    async def _source(self, parent: Job, tile: int | None) -> Image.Image:
        files = parent.result.get("images", {})
        name = files["tiles"][tile] if tile is not None else files["image"]

        def load() -> Image.Image:
            with Image.open(self.job_dir(parent.id) / name) as opened:
                return opened.convert("RGB")

        return await asyncio.to_thread(load)

    async def _execute(self, job: Job, progress: Any) -> dict[str, Any]:
        seeds = tuple(int(s) for s in job.result.get("seeds", ()))
        prompt = ImaginePrompt.from_dict(job.prompt)
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
        if parent is None or job.action == "🔄":
            request = actions.generation(prompt, self.context, seeds)
            if job.inputs:
                size = (request.width, request.height)
                init = await asyncio.to_thread(
                    lambda: images.blend([self.load_input(n) for n in job.inputs], size)
                )
                strength = image_strength(prompt)
                request = dataclasses.replace(request, init_image=init, strength=strength)
        else:
            tile = actions.VARIATION_BUTTONS.get(job.action)
            source = await self._source(parent, tile)
            request = await asyncio.to_thread(
                actions.from_image, job.action, prompt, source, self.context, seeds
            )
        tiles = await self.engine.generate(request, progress)
        checked = await asyncio.to_thread(_checked_tiles, tiles, request)
        return await self._store_grid(job, request, checked)

    async def _copy_tile(self, job: Job, parent: Job) -> dict[str, Any]:
        assert job.tile is not None
        source = self.job_dir(parent.id) / parent.result["images"]["tiles"][job.tile]
        target = self.job_dir(job.id) / "image.png"
        target.unlink(missing_ok=True)
        await asyncio.to_thread(_share, source, target)
        with Image.open(target) as opened:
            size = opened.size
        return {
            "images": {"image": "image.png"},
            "width": size[0],
            "height": size[1],
            "buttons": actions.buttons_for(
                "upscale", self.context.capabilities_for(job), size, job.action
            ),
        }

    async def _store_single(self, job: Job, image: Image.Image) -> dict[str, Any]:
        await asyncio.to_thread(images.save_png, image, self.job_dir(job.id) / "image.png")
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
        folder = self.job_dir(job.id)

        def write() -> None:
            # Pillow's encoders release the GIL: tiles and grid encode side by side.
            with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
                grid = pool.submit(
                    lambda: images.save_jpeg(images.compose_grid(tiles), folder / "grid.jpg")
                )
                pngs = [
                    pool.submit(images.save_png, t, folder / f"{i}.png")
                    for i, t in enumerate(tiles)
                ]
                for future in [grid, *pngs]:
                    future.result()

        await asyncio.to_thread(write)
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


def _share(source: Path, target: Path) -> None:
    """Images are immutable, so a hard link shares the file; where the file system has none
    (some bind mounts, SMB, FAT), a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


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
