"""Images for Discord: the right format for each kind, always under the limit, readable."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from bot.attachments import ImageKind, UnreadableImage, file_name, fit


def encoded(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def noise(side: int) -> Image.Image:
    return Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))


def test_grid_png_becomes_webp_and_webp_passes_through() -> None:
    png = encoded(Image.new("RGB", (64, 64), "red"), "PNG")
    assert fit(png, ImageKind.GRID, 1 << 20).extension == "webp"
    jpeg = encoded(Image.new("RGB", (64, 64), "red"), "JPEG")
    assert fit(jpeg, ImageKind.GRID, 1 << 20).data == jpeg


def test_single_image_stays_png_when_it_fits() -> None:
    png = encoded(Image.new("RGB", (64, 64), "blue"), "PNG")
    result = fit(png, ImageKind.SINGLE, 1 << 20)
    assert (result.extension, result.data) == ("png", png)


@pytest.mark.parametrize("kind", [ImageKind.GRID, ImageKind.SINGLE])
def test_too_large_is_reencoded_then_shrunk_under_the_limit(kind: ImageKind) -> None:
    png = encoded(noise(400), "PNG")  # about 480 KB of incompressible pixels
    result = fit(png, kind, 30_000)
    assert len(result.data) <= 30_000
    assert result.extension == "webp"
    assert Image.open(io.BytesIO(result.data)).width < 400


def test_garbage_is_unreadable() -> None:
    with pytest.raises(UnreadableImage):
        fit(b"<html>not an image</html>", ImageKind.GRID, 1 << 20)


def test_file_name_is_safe_and_names_the_prompt() -> None:
    assert file_name("A red/cat! --ar 3:2", "ab_C-1", "png") == "a_red_cat_ab_C-1.png"
    assert file_name("", "x/../y", "webp") == "image_xy.webp"
