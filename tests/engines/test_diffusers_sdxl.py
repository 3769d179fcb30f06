"""The same engine code on an SDXL pipeline (two text encoders, pooled embeddings), tiny and random.

SDXL-Turbo must work by changing only IMAGINE_MODEL: here the model folder is all that differs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from imagine.engines import create_engine
from imagine.engines.base import Engine, GenerateRequest, no_progress
from imagine.settings import Settings
from tests.engines.conftest import diffusers_settings

pytest.importorskip("diffusers", reason="the local extra is not installed")

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float64)


def request(**changes: object) -> GenerateRequest:
    fields: dict[str, object] = {"prompt": "a red cat", "width": 64, "height": 64, "seeds": (5,)}
    fields.update(changes)
    return GenerateRequest(**fields)  # type: ignore[arg-type]


@pytest.fixture
async def sdxl(settings: Settings, tiny_sdxl: Path) -> AsyncIterator[Engine]:
    engine = create_engine(diffusers_settings(settings, tiny_sdxl))
    await engine.start()
    yield engine
    await engine.close()


async def test_sdxl_turbo_is_detected(sdxl: Engine) -> None:
    assert sdxl.capabilities.native_size == 512  # SDXL-Turbo was distilled at 512²
    assert sdxl.capabilities.weighted_prompts
    assert sdxl.capabilities.outpaint


async def test_sdxl_batch_tiles_equal_single_runs(sdxl: Engine) -> None:
    batch = await sdxl.generate(request(seeds=(5, 6, 7)), no_progress)
    single = await sdxl.generate(request(seeds=(6,)), no_progress)

    assert [tile.size for tile in batch] == [(64, 64)] * 3
    assert np.abs(pixels(batch[1]) - pixels(single[0])).max() <= 2
    assert np.abs(pixels(batch[0]) - pixels(batch[1])).mean() > 5


async def test_sdxl_img2img_and_outpaint(sdxl: Engine) -> None:
    init = Image.new("RGB", (64, 64), (20, 90, 160))
    ImageDraw.Draw(init).ellipse((10, 10, 50, 50), fill=(250, 220, 30))
    mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(mask).rectangle((0, 40, 63, 63), fill=255)

    varied = await sdxl.generate(request(seeds=(1, 2), init_image=init, strength=0.6), no_progress)
    filled = await sdxl.generate(request(init_image=init, mask=mask), no_progress)

    assert [tile.size for tile in varied] == [(64, 64)] * 2
    assert np.array_equal(pixels(filled[0])[:36], pixels(init)[:36])
    assert np.abs(pixels(filled[0])[44:] - pixels(init)[44:]).mean() > 10


async def test_sdxl_weighted_prompts_use_pooled_embeddings_too(sdxl: Engine) -> None:
    async def run(**changes: object) -> np.ndarray:
        tiles = await sdxl.generate(request(guidance=3.0, steps=2, **changes), no_progress)
        return pixels(tiles[0])

    plain = await run()
    one_part = await run(weighted=(("a red cat", 1.0),))
    mixed = await run(weighted=(("a red cat", 2.0), ("dog", 1.0), ("sea", -0.5)))

    assert np.abs(plain - one_part).max() <= 2
    assert np.abs(plain - mixed).mean() > 5
