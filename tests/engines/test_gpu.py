"""The diffusers engine on a CUDA GPU (``pytest -m gpu``): skipped where PyTorch sees none.

The tiny pipeline again, loaded through the real path with ``IMAGINE_DEVICE=cuda``: half
precision, a grid of four, V1 (img2img from a tile) and an upscale.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from imagine.engines import create_engine
from imagine.engines.base import Engine, no_progress
from imagine.settings import Settings
from tests.engines.conftest import TinyModels, diffusers_settings
from tests.engines.test_diffusers import difference, request

torch = pytest.importorskip("torch", reason="the local extra is not installed")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="PyTorch sees no CUDA device"),
    pytest.mark.filterwarnings(
        "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
    ),
]


@pytest.fixture
async def cuda_engine(settings: Settings, tiny_models: TinyModels) -> AsyncIterator[Engine]:
    engine = create_engine(
        diffusers_settings(settings, tiny_models.pipeline, IMAGINE_DEVICE="cuda")
    )
    await engine.start()
    yield engine
    await engine.close()


async def test_the_engine_runs_on_cuda_in_half_precision(cuda_engine: Engine) -> None:
    loaded = cuda_engine._loaded  # type: ignore[attr-defined]

    assert loaded.device.type == "cuda"
    assert loaded.text2img.unet.dtype == torch.float16
    assert loaded.backend == "pytorch"


async def test_a_grid_of_four_and_v1(cuda_engine: Engine) -> None:
    grid = await cuda_engine.generate(request(seeds=(1, 2, 3, 4)), no_progress)

    assert [tile.size for tile in grid] == [(64, 64)] * 4
    assert difference(grid[0], grid[1]) > 5
    again = await cuda_engine.generate(request(seeds=(1,)), no_progress)
    assert difference(grid[0], again[0]) <= 2  # tile k is the single run with seed k

    varied = await cuda_engine.generate(
        request(seeds=(5, 6, 7, 8), init_image=grid[0], strength=0.65), no_progress
    )
    assert [tile.size for tile in varied] == [(64, 64)] * 4
    assert difference(varied[0], varied[1]) > 1
    assert difference(varied[0], grid[0]) > 1


async def test_an_upscale(cuda_engine: Engine) -> None:
    grid = await cuda_engine.generate(request(seeds=(1,)), no_progress)

    upscaled = await cuda_engine.upscale(grid[0], 2, no_progress)

    assert upscaled.size == (128, 128)
