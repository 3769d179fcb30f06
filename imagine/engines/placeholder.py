"""The placeholder engine: deterministic pictures from (prompt, seed, size), no model needed.

It implements the whole protocol (txt2img, img2img, outpaint, upscale, progress, cancel) and is the
engine's test double. It is flagged as a placeholder in ``/v2/info`` and the logs so nobody mistakes
its output for a model's.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from typing import Self

from PIL import Image, ImageDraw, ImageOps

from imagine.engines.base import Capabilities, GenerateRequest, ProgressCallback
from imagine.settings import Settings

_STEPS = 10


def _rng(prompt: str, seed: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x00{prompt}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def render(prompt: str, seed: int, width: int, height: int) -> Image.Image:
    """A picture that depends only on its arguments and differs visibly when any of them does."""
    rng = _rng(prompt, seed)

    def colour() -> tuple[int, int, int]:
        return (rng.randrange(256), rng.randrange(256), rng.randrange(256))

    gradient = Image.linear_gradient("L").rotate(rng.uniform(0, 360), expand=False)
    image = ImageOps.colorize(gradient, colour(), colour()).resize((width, height))
    draw = ImageDraw.Draw(image)
    scale = min(width, height)
    for _ in range(6 + rng.randrange(6)):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(scale // 16 + 1, scale // 4 + 2)
        box = (x - r, y - r, x + r, y + r)
        if rng.random() < 0.5:
            draw.ellipse(box, fill=colour(), outline=(0, 0, 0), width=max(1, scale // 256))
        else:
            draw.rectangle(box, fill=colour(), outline=(0, 0, 0), width=max(1, scale // 256))
    draw.text((scale // 32, scale // 32), f"{prompt[:40]}\nseed {seed}", fill=(255, 255, 255))
    return image


class PlaceholderEngine:
    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self._capabilities = Capabilities(
            name="placeholder",
            is_placeholder=True,
            native_size=512,
            multiple=8,
            upscale=False,
            upscaler="Lanczos resampling (the placeholder has no model)",
            notes=("This is the placeholder engine: pictures are patterns, not AI images.",),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(seconds=settings.placeholder_seconds)

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def _simulate(self, progress: ProgressCallback, preview: Image.Image | None) -> None:
        for step in range(_STEPS):
            if self.seconds:
                time.sleep(self.seconds / _STEPS)
            progress((step + 1) / _STEPS, preview if step == _STEPS // 2 else None)

    def _generate(self, request: GenerateRequest, progress: ProgressCallback) -> list[Image.Image]:
        size = (request.width, request.height)
        text = (
            request.prompt
            if not request.negative_prompt
            else f"{request.prompt} --no {request.negative_prompt}"
        )
        tiles = []
        for seed in request.seeds:
            image = render(text, seed, *size)
            if request.init_image is not None:
                init = request.init_image.convert("RGB").resize(size)
                if request.mask is not None:
                    image = Image.composite(image, init, request.mask.convert("L").resize(size))
                else:
                    image = Image.blend(init, image, max(0.0, min(1.0, request.strength)))
            tiles.append(image)
        self._simulate(progress, tiles[0].resize((max(1, size[0] // 8), max(1, size[1] // 8))))
        return tiles

    async def generate(
        self, request: GenerateRequest, progress: ProgressCallback
    ) -> list[Image.Image]:
        return await asyncio.to_thread(self._generate, request, progress)

    def _upscale(self, image: Image.Image, factor: int, progress: ProgressCallback) -> Image.Image:
        self._simulate(progress, None)
        return image.resize((image.width * factor, image.height * factor), Image.Resampling.LANCZOS)

    async def upscale(
        self, image: Image.Image, factor: int, progress: ProgressCallback
    ) -> Image.Image:
        return await asyncio.to_thread(self._upscale, image, factor, progress)
