"""Image work: the 2x2 grid, file encodings, and the canvases that zoom, pan and make-square outpaint.

Everything here is CPU-bound: callers run it in a thread, never on the event loop.
"""

from __future__ import annotations

import io
import math

from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

# Decompression bombs: image prompts above 40 MP are refused before they are decoded (most phone
# photos are 12 MP; 40 MP of RGB is already 120 MB in memory). Pillow's own guard is set to match.
MAX_PIXELS = 40_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

PAN = {"⬅️": "left", "➡️": "right", "⬆️": "up", "⬇️": "down"}
ZOOM = {"Zoom Out 2x": 2.0, "Zoom Out 1.5x": 1.5}


BLOCKED = "imagine-blocked"
"""``Image.info`` key an engine sets on a tile that its safety checker withheld."""


def blocked_tile(size: tuple[int, int]) -> Image.Image:
    """What stands in for a tile the safety checker withheld: grey, and says so (not black)."""
    image = Image.new("RGB", size, (54, 57, 63))
    draw = ImageDraw.Draw(image)
    text = "Blocked by the\nmodel's safety checker"
    font_size = max(10, min(size) // 14)
    draw.multiline_text(
        (size[0] / 2, size[1] / 2),
        text,
        fill=(220, 221, 222),
        anchor="mm",
        align="center",
        font_size=font_size,
    )
    image.info[BLOCKED] = "safety checker"
    return image


def compose_grid(tiles: list[Image.Image]) -> Image.Image:
    """Up to four tiles of one size in a 2x2 grid, left to right, top to bottom (U1 U2 / U3 U4)."""
    width, height = tiles[0].size
    grid = Image.new("RGB", (width * 2, height * 2))
    for index, tile in enumerate(tiles[:4]):
        rgb = tile if tile.mode == "RGB" else tile.convert("RGB")
        grid.paste(rgb, ((index % 2) * width, (index // 2) * height))
    return grid


def png_bytes(image: Image.Image) -> bytes:
    # compress_level 1: a 1024² tile encodes ~5x faster than at the default 6, ~20% larger.
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def jpeg_bytes(image: Image.Image, quality: int = 92) -> bytes:
    buffer = io.BytesIO()
    (image if image.mode == "RGB" else image.convert("RGB")).save(
        buffer, format="JPEG", quality=quality
    )
    return buffer.getvalue()


def open_rgb(data: bytes) -> Image.Image:
    """An image this service stored itself, loaded as RGB."""
    with Image.open(io.BytesIO(data)) as opened:
        return opened.convert("RGB")


def decode(data: bytes) -> Image.Image:
    """Decode and fully load an image; raises ValueError with a sentence for anything unusable."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            # The header tells the size: refuse before a small file expands into gigabytes.
            if opened.width * opened.height > MAX_PIXELS:
                raise ValueError(
                    f"the image has too many pixels (over {MAX_PIXELS // 1_000_000} megapixels)"
                )
            opened.load()
            ImageOps.exif_transpose(opened, in_place=True)
            return opened if opened.mode == "RGB" else opened.convert("RGB")
    except Image.DecompressionBombError:
        raise ValueError(
            f"the image has too many pixels (over {MAX_PIXELS // 1_000_000} megapixels)"
        ) from None
    except (OSError, SyntaxError, UnidentifiedImageError):
        raise ValueError(
            "the file is not an image Pillow can read (PNG, JPEG, WebP, GIF)"
        ) from None


def blend(images: list[Image.Image], size: tuple[int, int]) -> Image.Image:
    """Several image prompts as one init image: an even blend, each fitted to ``size``."""
    fitted = [
        ImageOps.fit(image.convert("RGB"), size, Image.Resampling.LANCZOS) for image in images
    ]
    result = fitted[0]
    for count, image in enumerate(fitted[1:], start=2):
        result = Image.blend(result, image, 1.0 / count)
    return result


def zoom_canvas(
    image: Image.Image, factor: float, size: tuple[int, int]
) -> tuple[Image.Image, Image.Image]:
    """The image shrunk by ``factor`` into the middle of a ``size`` canvas; mask white where to paint."""
    inner = (max(1, round(size[0] / factor)), max(1, round(size[1] / factor)))
    return _place(image, size, inner, ((size[0] - inner[0]) // 2, (size[1] - inner[1]) // 2))


def custom_zoom_canvas(
    image: Image.Image, factor: float, size: tuple[int, int]
) -> tuple[Image.Image, Image.Image]:
    """Custom Zoom: the image, its shape kept, fitted into the middle ``1/factor`` of a ``size``
    canvas (which may have another shape: a new --ar); mask white where to paint."""
    box = (size[0] / factor, size[1] / factor)
    scale = min(box[0] / image.width, box[1] / image.height)
    inner = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return _place(image, size, inner, ((size[0] - inner[0]) // 2, (size[1] - inner[1]) // 2))


COMMON_RATIOS = ((1, 1), (5, 4), (4, 3), (3, 2), (16, 9), (2, 1), (21, 9), (4, 5), (3, 4),
                 (2, 3), (9, 16), (1, 2))  # fmt: skip


def common_ratio(width: int, height: int) -> tuple[int, int]:
    """The common aspect ratio nearest to ``width``:``height`` (as Midjourney's /describe
    writes an image's --ar), or the exact one when none is near."""
    actual = math.log(width / height)
    best = min(COMMON_RATIOS, key=lambda r: abs(math.log(r[0] / r[1]) - actual))
    if abs(math.log(best[0] / best[1]) - actual) < 0.05:
        return best
    divisor = math.gcd(width, height) or 1
    return (width // divisor, height // divisor)


def repaint_mask(mask: Image.Image, size: tuple[int, int]) -> Image.Image:
    """A painted mask (Vary (Region)) as mode 'L' at ``size``, white = repaint: its alpha where it
    has transparency (opaque = painted), else its brightness (white = painted)."""
    if mask.mode in ("RGBA", "LA", "PA") or (mask.mode == "P" and "transparency" in mask.info):
        alpha = mask.convert("RGBA").getchannel("A")
        lowest = alpha.getextrema()[0]
        if isinstance(lowest, int | float) and lowest < 255:
            return alpha.resize(size, Image.Resampling.NEAREST).point(lambda v: 255 * (v > 127))
    grey = mask.convert("L").resize(size, Image.Resampling.NEAREST)
    return grey.point(lambda v: 255 * (v > 127))


def pan_canvas(
    image: Image.Image, direction: str, size: tuple[int, int]
) -> tuple[Image.Image, Image.Image]:
    """The canvas extended by half in ``direction`` (``size`` already has the new aspect)."""
    if direction in ("left", "right"):
        inner = (round(size[0] / 1.5), size[1])
        offset = (size[0] - inner[0], 0) if direction == "left" else (0, 0)
    else:
        inner = (size[0], round(size[1] / 1.5))
        offset = (0, size[1] - inner[1]) if direction == "up" else (0, 0)
    return _place(image, size, inner, offset)


def square_canvas(image: Image.Image, size: tuple[int, int]) -> tuple[Image.Image, Image.Image]:
    """The image centred in a square canvas of ``size``; the bands beside it are painted."""
    scale = min(size[0] / image.width, size[1] / image.height)
    inner = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return _place(image, size, inner, ((size[0] - inner[0]) // 2, (size[1] - inner[1]) // 2))


def pan_aspect(width: int, height: int, direction: str) -> tuple[int, int]:
    if direction in ("left", "right"):
        return (width * 3, height * 2)
    return (width * 2, height * 3)


def _place(
    image: Image.Image, size: tuple[int, int], inner: tuple[int, int], offset: tuple[int, int]
) -> tuple[Image.Image, Image.Image]:
    small = image.convert("RGB").resize(inner, Image.Resampling.LANCZOS)
    # The border starts as a blurred stretch of the image, a better seed for outpainting than grey.
    canvas = image.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    canvas.paste(small, offset)
    mask = Image.new("L", size, 255)
    mask.paste(0, (offset[0], offset[1], offset[0] + inner[0], offset[1] + inner[1]))
    return canvas, mask
