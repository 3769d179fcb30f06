"""What a running job shows while it renders: its progress, and small previews in the storage.

Engines call the progress callback from a worker thread (local engines) or the event loop
(remote ones); either way the preview is encoded off the loop and stored under the job's id.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field

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


class Previews:
    def __init__(self, storage: ImageStorage) -> None:
        self.storage = storage
        self._pending: set[asyncio.Future[None]] = set()

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
                        asyncio.run_coroutine_threadsafe(self._put_preview(state, name, data), loop)
                else:  # a remote engine calls from the event loop: encode off it
                    task = loop.create_task(self._encode_preview(state, preview.copy(), name))
                    self._pending.add(task)
                    task.add_done_callback(self._pending.discard)

        return progress

    async def _encode_preview(self, state: RunState, preview: Image.Image, name: str) -> None:
        data = await asyncio.to_thread(preview_jpeg, state, preview)
        if data is not None:
            await self._put_preview(state, name, data)

    async def _put_preview(self, state: RunState, name: str, data: bytes) -> None:
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
