"""Outpainting (Zoom Out, pans, Make Square) with the diffusers engine on the tiny pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from imagine import images
from imagine.engines.base import Engine, GenerateRequest

pytest.importorskip("diffusers", reason="the local extra is not installed")

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

SIZE = 64


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float64)


class Progress:
    """A progress callback that counts its calls: one per denoising step, one after the decode."""

    def __init__(self) -> None:
        self.fractions: list[float] = []

    def __call__(self, fraction: float, preview: Image.Image | None = None) -> None:
        self.fractions.append(fraction)


def request(**changes: object) -> GenerateRequest:
    fields: dict[str, object] = {"prompt": "a red cat by the sea", "width": SIZE, "height": SIZE}
    return GenerateRequest(**(fields | {"seeds": (1,)} | changes))  # type: ignore[arg-type]


async def test_outpaint_on_a_turbo_model_continues_the_picture(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Zoom Out on a 1-step model that is not an inpainting one (the tiny pipeline, like SD-Turbo).

    At strength 1.0 the border started from pure noise: whatever the picture, the same border.
    Now it starts from the pre-filled border (a stretch of the image), so it follows the image.
    The tiny pipeline's random VAE turns every solid colour into about the same grey, so colours
    are compared with the picture as this VAE draws it, not with the source's RGB values.
    """
    from imagine.engines import diffusers_render

    loaded = engine._loaded  # type: ignore[attr-defined]
    ring = np.zeros((SIZE, SIZE), dtype=bool)  # the new border, clear of the feathered seam
    ring[:, : SIZE // 4 - 4] = ring[:, -(SIZE // 4 - 4) :] = True
    ring[: SIZE // 4 - 4] = ring[-(SIZE // 4 - 4) :] = True

    def as_drawn(canvas: Image.Image) -> np.ndarray:
        """The canvas through the model's own VAE: the most a border can follow the picture."""
        import torch

        with torch.inference_mode():
            pipe = loaded.text2img
            latents = pipe.vae.encode(pipe.image_processor.preprocess(canvas)).latent_dist.mean
            decoded = pipe.vae.decode(latents).sample
        return pixels(pipe.image_processor.postprocess(decoded, output_type="pil")[0])[ring]

    async def zoom_out(colour: tuple[int, int, int]) -> tuple[list[np.ndarray], np.ndarray, int]:
        source = Image.new("RGB", (SIZE, SIZE), colour)
        canvas, mask = images.zoom_canvas(source, 2.0, (SIZE, SIZE))
        progress = Progress()
        tiles = await engine.generate(
            request(seeds=(1, 2, 3, 4), init_image=canvas, mask=mask, strength=1.0), progress
        )
        steps = len(progress.fractions) - 1  # one call per denoising step, one after the decode
        return [pixels(tile)[ring] for tile in tiles], as_drawn(canvas), steps

    async def both() -> tuple[float, float, int]:
        """(how much the border changes with the picture, its distance to the picture, steps)"""
        blue, blue_drawn, steps = await zoom_out((30, 60, 200))
        yellow, _, _ = await zoom_out((240, 220, 30))
        follows = np.mean([np.abs(b - y).mean() for b, y in zip(blue, yellow, strict=True)])
        distance = np.mean([np.abs(b - blue_drawn).mean() for b in blue])
        return float(follows), float(distance), steps

    new_follows, new_distance, new_steps = await both()
    monkeypatch.setattr(diffusers_render, "OUTPAINT_STRENGTH", 1.0)  # the old behaviour
    monkeypatch.setattr(diffusers_render, "OUTPAINT_MIN_STEPS", 1)
    old_follows, old_distance, old_steps = await both()

    assert (old_steps, new_steps) == (1, 2)
    # Observed: the old border moved by 0.9 between a blue and a yellow picture, the new by 14.
    assert old_follows < 2
    assert new_follows > 8
    assert new_follows > 5 * old_follows
    # Observed: 34.0 (new) and 37.4 (old) from the picture as the VAE draws it.
    assert new_distance < old_distance - 2
