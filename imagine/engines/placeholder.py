"""The placeholder engine: deterministic pictures from (prompt, seed, size), no model needed.

It implements the whole protocol (txt2img, img2img, outpaint and painted masks, upscale, describe,
progress, cancel) and is the engine's test double. It is flagged as a placeholder in ``/v2/info``
and the logs so nobody mistakes its output for a model's. Its /describe reads colours, light and
layout from the pixels, so the same image always gets the same four prompts.

It honours ``--sref`` and ``--oref`` cheaply, so that the service and the bot have something to
see: each tile is tinted toward the references' mean colour, by ``min(0.8, 0.4·sw/100)`` for the
style images and ``min(0.8, 0.4·ow/100)`` for the omni one (``--sw 0``: no tint at all).
"""

from __future__ import annotations

import asyncio
import colorsys
import hashlib
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from typing import Self

from PIL import Image, ImageDraw, ImageOps, ImageStat

from imagine.engines.base import Capabilities, GenerateRequest, ProgressCallback
from imagine.settings import Settings

_STEPS = 10
_HUES = (
    (15, "red"), (40, "orange"), (68, "yellow"), (160, "green"), (195, "teal"), (250, "blue"),
    (290, "purple"), (335, "magenta"), (360, "red"),
)  # fmt: skip
"""Upper bounds of hue ranges, in degrees, and their colour names."""


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


def colour_name(red: int, green: int, blue: int) -> str:
    """The everyday name of one colour: black, grey, white, or a hue (brown, navy, pink too)."""
    hue, light, saturation = colorsys.rgb_to_hls(red / 255, green / 255, blue / 255)
    if light < 0.12:
        return "black"
    if saturation < 0.2 or (light > 0.88 and saturation < 0.6):
        return "white" if light > 0.8 else "grey"
    name = next(name for bound, name in _HUES if hue * 360 < bound)
    if name in ("orange", "red", "yellow") and light < 0.35:
        return "brown"
    if name == "blue" and light < 0.25:
        return "navy"
    if name in ("red", "magenta") and light > 0.7:
        return "pink"
    return name


@dataclass(frozen=True)
class Look:
    """What an image looks like, in words a prompt would use."""

    colours: tuple[str, ...]
    """Dominant colour names, the most covered first (one to three)."""
    light: str
    """'dark', 'dim', 'softly lit' or 'bright'."""
    colourfulness: str
    contrast: str
    centre: str
    """'a bright centre', 'a dark centre' or ''."""
    direction: str
    """Where the light is ('lighter at the top') or ''."""

    @classmethod
    def of(cls, image: Image.Image) -> Look:
        small = image.convert("RGB").resize((48, 48), Image.Resampling.BOX)
        raw = small.tobytes()  # bytes, not getdata(): that one is deprecated in Pillow 12
        rgb = [(raw[i], raw[i + 1], raw[i + 2]) for i in range(0, len(raw), 3)]
        counts = Counter(colour_name(*pixel) for pixel in rgb)
        total = len(rgb)
        colours = [name for name, n in counts.most_common(3) if n >= total * 0.08]
        luma = list(small.convert("L").tobytes())
        mean = statistics.fmean(luma)
        saturation = statistics.fmean(small.convert("HSV").tobytes()[1::3])
        spread = statistics.pstdev(luma)

        def region(left: int, top: int, right: int, bottom: int) -> float:
            return statistics.fmean(
                luma[y * 48 + x] for y in range(top, bottom) for x in range(left, right)
            )

        inner = region(16, 16, 32, 32)
        outer = (mean * total - inner * 256) / (total - 256)
        vertical = region(0, 0, 48, 16) - region(0, 32, 48, 48)
        horizontal = region(0, 0, 16, 48) - region(32, 0, 48, 48)
        direction = ""
        if max(abs(vertical), abs(horizontal)) > 30:
            if abs(vertical) >= abs(horizontal):
                direction = "lighter at the top" if vertical > 0 else "lighter at the bottom"
            else:
                direction = "lighter on the left" if horizontal > 0 else "lighter on the right"
        centre = "bright" if inner > outer else "dark"
        return cls(
            colours=tuple(colours or [counts.most_common(1)[0][0]]),
            light=_band(mean, (70, "dark"), (110, "dim"), (165, "softly lit"), "bright"),
            colourfulness=_band(saturation, (50, "muted"), (130, "rich"), "vivid"),
            contrast=_band(
                spread, (25, "low contrast"), (65, "moderate contrast"), "high contrast"
            ),
            centre="" if abs(inner - outer) <= 30 else f"a {centre} centre",
            direction=direction,
        )


def _band(value: float, *bands: tuple[float, str] | str) -> str:
    """The name of the first band ``value`` lies below, else the last name."""
    for band in bands:
        if isinstance(band, str):
            return band
        if value < band[0]:
            return band[1]
    raise ValueError("the last band must be a bare name")


_LIGHTING = {
    "dark": "low light",
    "dim": "dim light",
    "softly lit": "soft light",
    "bright": "bright light",
}


def _listed(names: tuple[str, ...]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def describe_image(image: Image.Image, count: int) -> list[str]:
    """``count`` different prompts for ``image``, from its colours, light and layout alone."""
    look = Look.of(image)
    main, others = look.colours[0], look.colours[1:]
    accents = f" with {_listed(others)} accents" if others else ""
    centre = f" with {look.centre}" if look.centre else ""
    extras = ", ".join(part for part in (look.centre, look.direction) if part)
    lighting = _LIGHTING[look.light]
    phrasings = [
        f"a {look.light}, mostly {_listed(look.colours)} image{centre}",
        f"{_listed(look.colours)} abstract shapes, {look.colourfulness} colours, {look.contrast}"
        + (f", {look.direction}" if look.direction else ""),
        f"a geometric pattern of {_listed(look.colours)}, {lighting}"
        + (f", {extras}" if extras else ""),
        f"a {look.colourfulness} {main} background{accents}, {lighting}, {look.contrast}",
    ]
    return [
        phrasings[i % len(phrasings)] + (f", take {i // len(phrasings) + 1}" if i >= 4 else "")
        for i in range(count)
    ]


def tinted(image: Image.Image, references: tuple[Image.Image, ...], weight: int) -> Image.Image:
    """``image`` blended toward the mean colour of ``references`` by ``min(0.8, 0.4·weight/100)``."""
    share = min(0.8, 0.4 * weight / 100)
    if not references or share <= 0:
        return image
    means = [ImageStat.Stat(ref.convert("RGB").resize((16, 16))).mean for ref in references]
    colour = tuple(round(statistics.fmean(m[c] for m in means)) for c in range(3))
    return Image.blend(image, Image.new("RGB", image.size, colour), share)


def repaint_mask(mask: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The area to repaint as mode 'L', white = repaint: a mask's alpha if it has any
    transparency (opaque = repaint), else its luminance."""
    if mask.mode in ("RGBA", "LA", "PA") or (mask.mode == "P" and "transparency" in mask.info):
        alpha = mask.convert("RGBA").getchannel("A")
        if alpha.getextrema()[0] != 255:
            return alpha.resize(size)
    return mask.convert("L").resize(size)


class PlaceholderEngine:
    def __init__(self, seconds: float = 0.0, note: str = "") -> None:
        """``note``: a sentence for /v2/info, e.g. why ``IMAGINE_ENGINE=auto`` chose this."""
        self.seconds = seconds
        self._capabilities = Capabilities(
            name="placeholder",
            is_placeholder=True,
            native_size=512,
            multiple=8,
            upscale=False,
            upscaler="Lanczos resampling (the placeholder has no model)",
            describe=True,
            honours=("--sref", "--oref"),
            notes=(
                "This is the placeholder engine: pictures are patterns, not AI images.",
                *((note,) if note else ()),
            ),
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
                    # The pattern only where the mask says: outside it the init image, unchanged.
                    image = Image.composite(image, init, repaint_mask(request.mask, size))
                else:
                    image = Image.blend(init, image, max(0.0, min(1.0, request.strength)))
            image = tinted(image, request.style_images, request.style_weight)
            if request.omni_image is not None:
                image = tinted(image, (request.omni_image,), request.omni_weight)
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

    def _describe(self, image: Image.Image, count: int, progress: ProgressCallback) -> list[str]:
        prompts = describe_image(image, count)
        self._simulate(progress, None)
        return prompts

    async def describe(
        self, image: Image.Image, count: int, progress: ProgressCallback
    ) -> list[str]:
        return await asyncio.to_thread(self._describe, image, count, progress)
