"""Images made ready for Discord: the right format, always under the upload limit.

Grids go out as WebP or JPEG; a single (upscaled) image as PNG when it fits, else WebP. Anything
larger is re-encoded at falling quality, then shrunk, until it fits. Encoding a big image takes
long enough to stall the gateway heartbeat, so :func:`prepare` runs it in a thread.
"""

from __future__ import annotations

import asyncio
import io
import re
from dataclasses import dataclass
from enum import Enum

import discord
from PIL import Image

_QUALITIES = (90, 80, 70, 55, 40)
_SHRINK = 0.75


class ImageKind(Enum):
    GRID = "grid"
    SINGLE = "single"


class UnreadableImage(ValueError):
    """The service sent bytes that are not an image Pillow can read."""


@dataclass(frozen=True)
class Encoded:
    data: bytes
    extension: str


def _open(data: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UnreadableImage("the image service sent a file that is not a readable image") from exc
    return image


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def _webp_within(image: Image.Image, limit: int) -> Encoded:
    rgb = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
    while True:
        for quality in _QUALITIES:
            data = _save(rgb, "WEBP", quality=quality, method=4)
            if len(data) <= limit:
                return Encoded(data, "webp")
        if min(rgb.size) <= 16:
            raise UnreadableImage("the image cannot be made small enough to upload")
        size = (max(1, int(rgb.width * _SHRINK)), max(1, int(rgb.height * _SHRINK)))
        rgb = rgb.resize(size, Image.Resampling.LANCZOS)


def fit(data: bytes, kind: ImageKind, limit: int) -> Encoded:
    """``data`` in the format Discord should get for ``kind``, at most ``limit`` bytes."""
    image = _open(data)
    source = (image.format or "").upper()
    if kind is ImageKind.GRID:
        if source in ("WEBP", "JPEG") and len(data) <= limit:
            return Encoded(data, "jpg" if source == "JPEG" else "webp")
        return _webp_within(image, limit)
    if source == "PNG" and len(data) <= limit:
        return Encoded(data, "png")
    if source != "PNG":
        png = _save(image, "PNG", optimize=False)
        if len(png) <= limit:
            return Encoded(png, "png")
    return _webp_within(image, limit)


def file_name(prompt: str, job_id: str, extension: str) -> str:
    """Midjourney-like names: a few words of the prompt, then the job id."""
    words = re.findall(r"[a-z0-9]+", prompt.lower().split("--")[0])[:6]
    stem = "_".join(words)[:60] or "image"
    safe_id = re.sub(r"[^A-Za-z0-9_-]", "", job_id)[:32]
    return f"{stem}_{safe_id}.{extension}"


@dataclass(frozen=True)
class Upload:
    """An encoded image; ``file()`` makes a fresh discord.File (one is consumed per upload attempt)."""

    data: bytes
    filename: str

    def file(self) -> discord.File:
        return discord.File(io.BytesIO(self.data), filename=self.filename)


async def prepare(data: bytes, kind: ImageKind, limit: int, prompt: str, job_id: str) -> Upload:
    encoded = await asyncio.to_thread(fit, data, kind, limit)
    return Upload(encoded.data, file_name(prompt, job_id, encoded.extension))


async def preview(data: bytes, job_id: str) -> Upload | None:
    """The engine's preview, small; None when it cannot be read (previews are optional)."""
    try:
        encoded = await asyncio.to_thread(fit, data, ImageKind.GRID, 1024 * 1024)
    except UnreadableImage:
        return None
    return Upload(encoded.data, file_name("preview", job_id, encoded.extension))
