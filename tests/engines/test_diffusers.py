"""The diffusers engine on a tiny random Stable Diffusion pipeline, loaded through its real path.

The pipeline's weights are random, so the pictures are noise; what is tested is what a user
would notice: batches, seeds, img2img, outpainting, progress, cancelling, a free event loop.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

from imagine.codes import ResultCode
from imagine.engines.base import (
    Engine,
    EngineCancelled,
    EngineError,
    GenerateRequest,
    no_progress,
)

pytest.importorskip("diffusers", reason="the local extra is not installed")

pytestmark = pytest.mark.filterwarnings(
    # diffusers 0.42's schedulers call np.array() on tensors; numpy 2.4 warns about torch's
    # __array__ signature. Harmless, and not ours to fix.
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

SIZE = 64
PROMPT = "a red cat by the sea"


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float64)


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel, 0-255."""
    return float(np.abs(pixels(a) - pixels(b)).mean())


def request(**changes: object) -> GenerateRequest:
    fields: dict[str, object] = {"prompt": PROMPT, "width": SIZE, "height": SIZE, "seeds": (1,)}
    fields.update(changes)
    return GenerateRequest(**fields)  # type: ignore[arg-type]


class Progress:
    """A progress callback that records what it is told."""

    def __init__(self) -> None:
        self.fractions: list[float] = []
        self.previews: list[Image.Image] = []

    def __call__(self, fraction: float, preview: Image.Image | None = None) -> None:
        self.fractions.append(fraction)
        if preview is not None:
            self.previews.append(preview)


async def test_txt2img_batch_gives_four_different_tiles(engine: Engine) -> None:
    tiles = await engine.generate(request(seeds=(1, 2, 3, 4)), no_progress)

    assert [tile.size for tile in tiles] == [(SIZE, SIZE)] * 4
    assert {tile.mode for tile in tiles} == {"RGB"}
    for i in range(4):
        for j in range(i + 1, 4):
            assert difference(tiles[i], tiles[j]) > 5


async def test_capabilities_come_from_the_model(engine: Engine) -> None:
    capabilities = engine.capabilities

    assert capabilities.name == "diffusers"
    assert not capabilities.is_placeholder
    assert capabilities.native_size == 512  # SD-Turbo family: the name says turbo
    assert capabilities.multiple == 8
    assert capabilities.seeds
    assert capabilities.parallel == 1  # one pipeline: the service runs one worker for it
    assert capabilities.img2img
    assert capabilities.outpaint
    assert capabilities.weighted_prompts


async def test_batched_tile_k_equals_a_single_run_with_seed_k(engine: Engine) -> None:
    seeds = (11, 22, 33, 44)
    batch = await engine.generate(request(seeds=seeds, steps=2), no_progress)

    for k in (0, 2):
        single = await engine.generate(request(seeds=(seeds[k],), steps=2), no_progress)
        # Equal up to float rounding of batched matrix products (observed: exactly equal).
        assert np.abs(pixels(single[0]) - pixels(batch[k])).max() <= 2
    assert difference(batch[0], batch[1]) > 5


def _init_image() -> Image.Image:
    image = Image.new("RGB", (SIZE, SIZE), (30, 60, 200))
    draw = ImageDraw.Draw(image)
    draw.ellipse((8, 8, 40, 40), fill=(240, 200, 20))
    draw.rectangle((36, 30, 60, 60), fill=(200, 20, 40))
    return image


async def test_img2img_strength_sets_how_many_steps_run(engine: Engine) -> None:
    async def steps_run(steps: int | None, strength: float) -> int:
        progress = Progress()
        tiles = await engine.generate(
            request(seeds=(1, 2), init_image=_init_image(), strength=strength, steps=steps),
            progress,
        )
        assert [tile.size for tile in tiles] == [(SIZE, SIZE)] * 2
        return len(progress.fractions) - 1  # one call per denoising step, one after the decode

    assert await steps_run(10, 0.3) == 3
    assert await steps_run(10, 1.0) == 10
    # SD-Turbo's default is one step: img2img raises it so that steps x strength >= 1.
    assert await steps_run(None, 0.3) == 1


async def test_img2img_follows_the_init_image(engine: Engine) -> None:
    init = _init_image()
    other = init.transpose(Image.Transpose.ROTATE_180)

    from_init = await engine.generate(request(init_image=init, strength=0.3), no_progress)
    again = await engine.generate(request(init_image=init, strength=0.3), no_progress)
    from_other = await engine.generate(request(init_image=other, strength=0.3), no_progress)

    assert difference(from_init[0], again[0]) == 0
    assert difference(from_init[0], from_other[0]) > 2


async def test_outpaint_keeps_the_unmasked_area(engine: Engine) -> None:
    init = _init_image()
    mask = Image.new("L", (SIZE, SIZE), 0)
    ImageDraw.Draw(mask).rectangle((SIZE // 2, 0, SIZE - 1, SIZE - 1), fill=255)

    tiles = await engine.generate(request(seeds=(1, 2), init_image=init, mask=mask), no_progress)

    for tile in tiles:
        out, original = pixels(tile), pixels(init)
        # Left of the seam (minus a 4-pixel feather band) the original is kept exactly.
        assert np.array_equal(out[:, : SIZE // 2 - 4], original[:, : SIZE // 2 - 4])
        # The masked right half is new.
        assert np.abs(out[:, SIZE // 2 :] - original[:, SIZE // 2 :]).mean() > 10
    assert difference(tiles[0], tiles[1]) > 2


async def test_progress_rises_to_one(engine: Engine) -> None:
    progress = Progress()

    await engine.generate(request(seeds=(1, 2), steps=6), progress)

    assert len(progress.fractions) == 7  # six steps, then the decode
    assert progress.fractions == sorted(set(progress.fractions))
    assert progress.fractions[-1] == 1.0
    assert progress.previews == []  # no TAESD, no previews


async def test_taesd_gives_previews_while_running(taesd_engine: Engine) -> None:
    progress = Progress()

    tiles = await taesd_engine.generate(request(seeds=(1, 2), steps=8), progress)

    assert len(tiles) == 2
    assert 2 <= len(progress.previews) <= 4
    assert all(preview.size == (SIZE, SIZE) for preview in progress.previews)
    assert progress.fractions[-1] == 1.0


async def test_cancel_from_the_progress_callback_stops_the_run(engine: Engine) -> None:
    calls: list[float] = []

    def cancel_on_second_step(fraction: float, preview: Image.Image | None = None) -> None:
        calls.append(fraction)
        if len(calls) == 2:
            raise EngineCancelled

    with pytest.raises(EngineCancelled):
        await engine.generate(request(seeds=(1, 2), steps=10), cancel_on_second_step)

    assert len(calls) == 2
    # The engine is free again and unchanged.
    tiles = await engine.generate(request(), no_progress)
    assert len(tiles) == 1


async def test_event_loop_keeps_ticking_while_generating(engine: Engine) -> None:
    beats: list[float] = []
    running = True

    async def heartbeat() -> None:
        while running:
            beats.append(time.monotonic())
            await asyncio.sleep(0.01)

    task = asyncio.create_task(heartbeat())
    await asyncio.sleep(0.02)
    started = time.monotonic()
    while time.monotonic() - started < 0.5:  # long enough to tell, however fast the machine
        await engine.generate(request(seeds=(1, 2, 3, 4), steps=10, width=128), no_progress)
    finished = time.monotonic()
    running = False
    await task

    during = [beat for beat in beats if started <= beat <= finished]
    assert len(during) >= (finished - started) / 0.01 / 4
    assert max(np.diff([started, *during, finished])) < 0.25


async def test_seamless_tiles_have_no_border_and_the_model_is_restored(engine: Engine) -> None:
    def edge_contrast(image: Image.Image) -> float:
        """Contrast along the four edges relative to inner lines. Zero padding leaves a flat
        border, a visible seam once the picture is tiled; circular padding leaves none."""
        p = pixels(image)
        edges = [p[:, 0], p[:, -1], p[0], p[-1]]
        inner = [p[:, i] for i in range(8, SIZE - 8)] + [p[i] for i in range(8, SIZE - 8)]
        return float(
            np.mean([e.std(axis=0).mean() for e in edges])
            / np.mean([line.std(axis=0).mean() for line in inner])
        )

    seeds = (1, 2, 3, 4)
    plain = await engine.generate(request(seeds=seeds), no_progress)
    tiled = await engine.generate(request(seeds=seeds, tile=True), no_progress)
    plain_again = await engine.generate(request(seeds=seeds), no_progress)

    # Observed: plain 0.34-0.44, tiled 0.79-1.24.
    assert all(edge_contrast(tile) < 0.55 for tile in plain)
    assert all(edge_contrast(tile) > 0.65 for tile in tiled)
    assert all(difference(a, b) == 0 for a, b in zip(plain, plain_again, strict=True))


async def test_weighted_prompts_combine_embeddings(engine: Engine) -> None:
    async def run(**changes: object) -> Image.Image:
        tiles = await engine.generate(request(guidance=3.0, steps=2, **changes), no_progress)
        return tiles[0]

    plain = await run(prompt="red cat")
    one_part = await run(prompt="red cat", weighted=(("red cat", 1.0),))
    even = await run(weighted=(("red cat", 1.0), ("dog", 1.0)))
    cat_heavy = await run(weighted=(("red cat", 3.0), ("dog", 1.0)))
    minus_sea = await run(weighted=(("red cat", 1.0), ("dog", 1.0), ("sea", -0.5)))

    assert np.abs(pixels(plain) - pixels(one_part)).max() <= 2
    # Observed differences: 24, 20 and 16 (a different seed: about 35).
    assert difference(plain, even) > 5
    assert difference(even, cat_heavy) > 5
    assert difference(even, minus_sea) > 5


async def test_negative_prompt_changes_a_guided_image(engine: Engine) -> None:
    plain = await engine.generate(request(guidance=3.0, steps=2), no_progress)
    negative = await engine.generate(
        request(guidance=3.0, steps=2, negative_prompt="dog"), no_progress
    )

    assert difference(plain[0], negative[0]) > 5  # observed: 11


async def test_upscale_enlarges(engine: Engine) -> None:
    progress = Progress()

    result = await engine.upscale(_init_image().resize((24, 16)), 2, progress)

    assert result.size == (48, 32)
    assert progress.fractions[-1] == 1.0


def test_tiles_the_safety_checker_flagged_are_marked_and_all_flagged_is_a_refusal() -> None:
    from diffusers.pipelines.stable_diffusion import StableDiffusionPipelineOutput

    from imagine.engines.diffusers_render import _checked
    from imagine.images import BLOCKED

    # The pipeline's own output shape: flagged images come back black.
    black, painted = Image.new("RGB", (64, 64)), Image.new("RGB", (64, 64), (200, 120, 40))
    images = [painted, black, painted, black]
    tiles = _checked(StableDiffusionPipelineOutput(images, [False, True, False, True]))

    assert [BLOCKED in tile.info for tile in tiles] == [False, True, False, True]
    assert tiles[0] is painted
    assert tiles[1].size == (64, 64)
    assert tiles[1].convert("L").getextrema()[1] > 100  # words, not a black square
    with pytest.raises(EngineError) as refused:
        _checked(StableDiffusionPipelineOutput(images, [True] * 4))
    assert refused.value.code is ResultCode.IMAGE_BLOCKED
