"""Images on the wire: PNG/WebP bytes and base64 in, Pillow images out, fitted to the size asked.

Encoding and decoding a 1024² picture takes tens of milliseconds, so engines call the ``*_many``
helpers through :func:`asyncio.to_thread` rather than on the event loop.
"""

from __future__ import annotations

import base64
import binascii
import io

from PIL import Image, ImageOps, UnidentifiedImageError


class BadImage(ValueError):
    """Bytes that are not a readable picture."""


def encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def encode_webp(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", lossless=True)
    return buffer.getvalue()


def png_base64(image: Image.Image) -> str:
    return base64.b64encode(encode_png(image)).decode("ascii")


def webp_base64(image: Image.Image) -> str:
    return base64.b64encode(encode_webp(image)).decode("ascii")


def decode_base64(data: str) -> bytes:
    """Base64 text, with or without a ``data:image/...;base64,`` prefix."""
    if data.startswith("data:"):
        data = data.partition(",")[2]
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadImage("not base64") from exc


def decode_image(data: bytes) -> Image.Image:
    """A fully loaded RGB image (RGBA kept when the picture has transparency)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            keep_alpha = image.mode in ("RGBA", "LA") or "transparency" in image.info
            return image.convert("RGBA" if keep_alpha else "RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadImage(f"not an image ({exc})") from exc


def decode_many(items: list[bytes]) -> list[Image.Image]:
    return [decode_image(item) for item in items]


def decode_base64_many(items: list[str]) -> list[Image.Image]:
    return [decode_image(decode_base64(item)) for item in items]


def fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """Exactly width x height: cropped to the aspect, then resized (no-op when already right)."""
    if image.size == (width, height):
        return image
    return ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS)


def fit_many(images: list[Image.Image], width: int, height: int) -> list[Image.Image]:
    return [fit(image, width, height) for image in images]


def enlarge(image: Image.Image, factor: int) -> Image.Image:
    """A plain resize, for engines without a super-resolution model (their capabilities say so)."""
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.LANCZOS)


def with_alpha_hole(image: Image.Image, mask: Image.Image) -> Image.Image:
    """``image`` as RGBA whose transparent pixels are where ``mask`` is white (the area to fill).

    OpenAI's edits and AI Horde's outpainting both read the area to paint from transparency.
    """
    rgba = image.convert("RGBA")
    rgba.putalpha(ImageOps.invert(mask.convert("L").resize(rgba.size)))
    return rgba
