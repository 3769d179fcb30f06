"""What a running job shows while it renders: its progress, and small previews in the storage.

Engines call the progress callback from a worker thread (local engines) or the event loop
(remote ones); either way the preview is encoded off the loop and stored under the job's id.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from imagine import images
from imagine.engines.base import EngineCancelled, ProgressCallback
from imagine.storage import ImageStorage

log = logging.getLogger(__name__)

PREVIEW_EVERY = 1.0  # seconds between preview files
PREVIEW_SIDE = 384


def image_key(job_id: str, name: str) -> str:
    """Where a job's image lives in the storage: under the job's id."""
    return f"images/{job_id}/{name}"


@dataclass
class RunState:
    """What a running job shows to pollers; written from the engine's thread."""

    job_id: str
    fraction: float = 0.0
    preview: str | None = None
    previews: int = 0
    last_preview: float = 0.0
    cancelled: threading.Event = field(default_factory=threading.Event)
    lost: bool = False
    """The lease was lost (another worker has the job): stop, and save nothing."""
    cancelled_here: bool = False
    """It was cancelled through this process (so ``lost`` is a cancel, not a takeover)."""
    closed: bool = False
    """The run has ended: a preview that comes later (an engine thread outliving a timeout) is
    dropped, so it cannot write into a folder that is being removed."""


class Previews:
    def __init__(self, storage: ImageStorage) -> None:
        self.storage = storage
        self._pending: dict[str, set[asyncio.Task[None]]] = {}

    def callback(self, job_id: str, state: RunState) -> ProgressCallback:
        """The progress callback of one job: it records the fraction, stores a preview at most
        every PREVIEW_EVERY seconds, and stops the engine once the job is cancelled."""
        loop = asyncio.get_running_loop()

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
                    asyncio.get_running_loop()
                except RuntimeError:  # an engine's worker thread: encode right here
                    data = preview_jpeg(state, preview)
                    if data is not None:
                        # Queued before the engine's thread returns, so the task exists (and
                        # is awaited by settle) before the run can end.
                        loop.call_soon_threadsafe(
                            self._start, state, self._put_preview(state, name, data)
                        )
                else:  # a remote engine calls from the event loop: encode off it
                    self._start(state, self._encode_preview(state, preview.copy(), name))

        return progress

    def _start(self, state: RunState, work: Coroutine[Any, Any, None]) -> None:
        if state.closed:
            work.close()
            return
        tasks = self._pending.setdefault(state.job_id, set())
        task = asyncio.get_running_loop().create_task(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def settle(self, state: RunState) -> None:
        """Close the run's previews and wait for the ones still being written, so the job's
        folder can be removed without a late preview writing into it again."""
        state.closed = True
        tasks = self._pending.pop(state.job_id, set())
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _encode_preview(self, state: RunState, preview: Image.Image, name: str) -> None:
        data = await asyncio.to_thread(preview_jpeg, state, preview)
        if data is not None:
            await self._put_preview(state, name, data)

    async def _put_preview(self, state: RunState, name: str, data: bytes) -> None:
        if state.closed:
            return
        try:
            await self.storage.put(image_key(state.job_id, name), data, "image/jpeg")
        except Exception:  # a preview is a nicety: never let it fail the job
            log.warning("job %s: preview %s could not be stored", state.job_id, name, exc_info=True)
            return
        state.preview = name  # only once the file is there


def preview_jpeg(state: RunState, preview: Image.Image) -> bytes | None:
    try:
        small = preview.copy()
        small.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
        return images.jpeg_bytes(small, quality=80)
    except Exception:  # a preview is a nicety: never let it fail the job
        log.warning("job %s: a preview could not be encoded", state.job_id, exc_info=True)
        return None
