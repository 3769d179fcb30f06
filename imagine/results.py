"""A finished render's files and result: tiles and grid (or one image) stored, the buttons each
result offers, and the checks an engine's output passes first."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from PIL import Image

from imagine import actions, images
from imagine.codes import ResultCode
from imagine.engines.base import EngineError, GenerateRequest
from imagine.jobs import Job
from imagine.previews import image_key
from imagine.prompt import ImaginePrompt
from imagine.storage import ImageStorage


class Results:
    def __init__(self, storage: ImageStorage, context: Callable[[], actions.PlanContext]) -> None:
        self.storage = storage
        self._context = context
        """The runner's context now: an API instance learns its workers' abilities late."""

    @property
    def context(self) -> actions.PlanContext:
        return self._context()

    def _upscale_buttons(self, job: Job, size: tuple[int, int]) -> list[str]:
        return actions.buttons_for(
            "upscale",
            self.context.capabilities_for(job),
            size,
            job.action,
            draft=bool(job.prompt.get("draft")),
        )

    async def copy_tile(self, job: Job, parent: Job) -> dict[str, Any]:
        assert job.tile is not None
        tile = parent.result["images"]["tiles"][job.tile]
        settings = parent.result.get("settings", {})  # a grid's tiles share the request's size
        size = (int(settings.get("width", 0)), int(settings.get("height", 0)))
        if not all(size):
            size = await asyncio.to_thread(
                _size_of, await self.storage.get(image_key(parent.id, tile))
            )
        await self.storage.copy(image_key(parent.id, tile), image_key(job.id, "image.png"))
        return {
            "images": {"image": "image.png"},
            "width": size[0],
            "height": size[1],
            "buttons": self._upscale_buttons(job, size),
        }

    async def single(self, job: Job, image: Image.Image) -> dict[str, Any]:
        data = await asyncio.to_thread(images.png_bytes, image)
        await self.storage.put(image_key(job.id, "image.png"), data, "image/png")
        return {
            "images": {"image": "image.png"},
            "width": image.width,
            "height": image.height,
            "buttons": self._upscale_buttons(job, image.size),
        }

    async def grid(
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
        # All of them end before a failure is raised: a put still running would otherwise write
        # into the job's folder after the failure removed it.
        outcomes = await asyncio.gather(*(
            self.storage.put(image_key(job.id, f"{i}.png"), data, "image/png")
            for i, data in enumerate(pngs)
        ), return_exceptions=True)  # fmt: skip
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
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


def split_inputs(inputs: list[str], prompt: ImaginePrompt) -> tuple[list[str], list[str]]:
    """A job's stored inputs as (image prompts or a mask, the references): the references, one
    per ``--sref``/``--oref`` link, are always the last."""
    count = len(prompt.references)
    if count == 0 or len(inputs) < count:
        return list(inputs), []
    return list(inputs[:-count]), list(inputs[-count:])


def _tile_of(button: str) -> int | None:
    """The tile (1-4) a U or V button works on; None for the others."""
    tile = actions.TILE_BUTTONS.get(button, actions.VARIATION_BUTTONS.get(button))
    return None if tile is None else tile + 1


def checked_tiles(tiles: object, request: GenerateRequest) -> list[Image.Image]:
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


def checked_single(image: object) -> Image.Image:
    if not isinstance(image, Image.Image) or image.width < 1 or image.height < 1:
        raise EngineError(
            ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND, "The engine's upscaler returned no image."
        )
    return image.convert("RGB")


def _size_of(data: bytes | None) -> tuple[int, int]:
    if data is None:
        raise EngineError(
            ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND,
            "The image this job starts from is no longer stored; it may have been deleted.",
        )
    with Image.open(io.BytesIO(data)) as image:
        return image.size
