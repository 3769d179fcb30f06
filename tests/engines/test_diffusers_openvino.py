"""The diffusers engine's OpenVINO backend on the tiny pipeline, exported through its real path.

The behavioural tests of the PyTorch backend (test_diffusers.py) run here again, on an engine
with ``IMAGINE_DEVICE=openvino``: batches, seeds, img2img, outpainting, weighted prompts,
progress, TAESD previews, cancelling. The export (about 20 s for the tiny model) is made once
per session into one data folder, which every engine here shares, as a server's restarts do.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from imagine.codes import ResultCode
from imagine.engines import create_engine
from imagine.engines.base import Engine, EngineError, EngineUnavailable, no_progress
from imagine.settings import Settings
from tests.engines.conftest import TinyModels, diffusers_settings
from tests.engines.test_diffusers import (  # the same assertions, on this backend
    pixels,
    request,
    test_batched_tile_k_equals_a_single_run_with_seed_k,
    test_cancel_from_the_progress_callback_stops_the_run,
    test_img2img_follows_the_init_image,
    test_img2img_strength_sets_how_many_steps_run,
    test_negative_prompt_changes_a_guided_image,
    test_outpaint_keeps_the_unmasked_area,
    test_progress_rises_to_one,
    test_taesd_gives_previews_while_running,
    test_txt2img_batch_gives_four_different_tiles,
    test_weighted_prompts_combine_embeddings,
)

pytest.importorskip("openvino", reason="the local extra (openvino) is not installed")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings(
        "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
    ),
]

# Imported, they are collected here too, and use this module's engine fixtures.
REUSED = (
    test_batched_tile_k_equals_a_single_run_with_seed_k,
    test_cancel_from_the_progress_callback_stops_the_run,
    test_img2img_follows_the_init_image,
    test_img2img_strength_sets_how_many_steps_run,
    test_negative_prompt_changes_a_guided_image,
    test_outpaint_keeps_the_unmasked_area,
    test_progress_rises_to_one,
    test_taesd_gives_previews_while_running,
    test_txt2img_batch_gives_four_different_tiles,
    test_weighted_prompts_combine_embeddings,
)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return 10 * np.log10(255.0**2 / mse) if mse else float("inf")


@pytest.fixture(scope="session")
def openvino_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data folder for the session: the first engine exports, the others reuse it."""
    return tmp_path_factory.mktemp("openvino-data")


def openvino_settings(
    settings: Settings, data: Path, models: TinyModels, **environ: str
) -> Settings:
    environ = {"IMAGINE_DEVICE": "openvino", **environ}
    chosen = diffusers_settings(settings, models.pipeline, **environ)
    return chosen.with_(data_dir=data)


async def started(settings: Settings) -> Engine:
    engine = create_engine(settings)
    await engine.start()
    return engine


@pytest.fixture
async def engine(
    settings: Settings, openvino_data: Path, tiny_models: TinyModels
) -> AsyncIterator[Engine]:
    engine = await started(openvino_settings(settings, openvino_data, tiny_models))
    yield engine
    await engine.close()


@pytest.fixture
async def taesd_engine(
    settings: Settings, openvino_data: Path, tiny_models: TinyModels
) -> AsyncIterator[Engine]:
    taesd = {"IMAGINE_TAESD": "1", "IMAGINE_TAESD_MODEL": str(tiny_models.taesd)}
    engine = await started(openvino_settings(settings, openvino_data, tiny_models, **taesd))
    yield engine
    await engine.close()


@pytest.fixture
async def pytorch_engine(settings: Settings, tiny_models: TinyModels) -> AsyncIterator[Engine]:
    engine = await started(diffusers_settings(settings, tiny_models.pipeline))
    yield engine
    await engine.close()


async def test_openvino_renders_what_pytorch_renders(
    engine: Engine, pytorch_engine: Engine
) -> None:
    seeds = (1, 2, 3, 4)
    for changes in ({}, {"weighted": (("red cat", 2.0), ("dog", 1.0)), "guidance": 3.0}):
        ov = await engine.generate(request(seeds=seeds, **changes), no_progress)
        pt = await pytorch_engine.generate(request(seeds=seeds, **changes), no_progress)
        for a, b in zip(ov, pt, strict=True):
            # the same networks in float32 on another runtime (observed: about 58 dB)
            assert psnr(pixels(a), pixels(b)) > 40


async def test_sizes_that_are_not_multiples_of_64_pixels_render(engine: Engine) -> None:
    # 72x56 pixels are 9x7 latents, which SD's three upsamplers do not divide.
    tiles = await engine.generate(request(seeds=(1, 2), width=72, height=56), no_progress)

    assert [tile.size for tile in tiles] == [(72, 56)] * 2


async def test_capabilities_offer_what_the_backend_can_do(engine: Engine) -> None:
    capabilities = engine.capabilities

    assert capabilities.name == "diffusers (OpenVINO)"
    assert capabilities.img2img
    assert capabilities.outpaint
    assert capabilities.inpaint
    assert capabilities.seeds
    assert capabilities.weighted_prompts
    assert "--sref" not in capabilities.honours
    assert "--oref" not in capabilities.honours
    assert "--stop" in capabilities.honours
    assert any("OpenVINO" in note and "--tile" in note for note in capabilities.notes)


async def test_tile_is_refused_with_a_sentence(engine: Engine) -> None:
    with pytest.raises(EngineError) as caught:
        await engine.generate(request(tile=True), no_progress)

    assert caught.value.code == ResultCode.INVALID_PARAMETER
    assert "IMAGINE_DEVICE=cpu" in caught.value.message


async def test_the_export_is_kept_in_the_data_folder_and_reused(
    settings: Settings,
    engine: Engine,
    openvino_data: Path,
    tiny_models: TinyModels,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # ``engine`` has started on this data folder (the session's first start exported there)
    tiles = await engine.generate(request(seeds=(5,)), no_progress)
    with caplog.at_level(logging.INFO, logger="imagine.engines.diffusers_openvino"):
        second = await started(openvino_settings(settings, openvino_data, tiny_models))
    try:
        again = await second.generate(request(seeds=(5,)), no_progress)
    finally:
        await second.close()

    folders = sorted(p for p in (openvino_data / "openvino").iterdir() if "-full-" in p.name)
    unet = [f for f in folders if "tiny-sd-turbo-unet-" in f.name]
    vae = [f for f in folders if "tiny-sd-turbo-vae-" in f.name]
    assert [sorted(p.name for p in folder.glob("*.xml")) for folder in unet + vae] == [
        ["unet.xml"],
        ["vae_decoder.xml", "vae_encoder.xml"],
    ]
    said = [r.getMessage() for r in caplog.records]
    assert not any("exporting" in line for line in said)
    assert sum("using the export" in line for line in said) == 2  # the UNet, the VAE
    assert np.array_equal(pixels(tiles[0]), pixels(again[0]))


async def test_int8_weights_render_close_to_the_full_ones(
    settings: Settings, engine: Engine, openvino_data: Path, tiny_models: TinyModels
) -> None:
    seeds = (1, 2, 3, 4)
    full = await engine.generate(request(seeds=seeds), no_progress)
    chosen = openvino_settings(
        settings, openvino_data, tiny_models, IMAGINE_OPENVINO_WEIGHTS="int8"
    )
    int8 = await started(chosen)
    try:
        compressed = await int8.generate(request(seeds=seeds), no_progress)
    finally:
        await int8.close()

    assert any("-int8-" in p.name for p in (openvino_data / "openvino").iterdir())
    values = [psnr(pixels(a), pixels(b)) for a, b in zip(full, compressed, strict=True)]
    assert all(value > 25 for value in values), values


async def test_auto_picks_openvino_on_a_machine_without_cuda(
    settings: Settings, openvino_data: Path, tiny_models: TinyModels
) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("auto takes CUDA where there is a GPU")
    chosen = openvino_settings(settings, openvino_data, tiny_models, IMAGINE_DEVICE="")
    engine = await started(chosen)
    try:
        assert engine.capabilities.name == "diffusers (OpenVINO)"
    finally:
        await engine.close()


async def test_wrong_openvino_settings_are_sentences(
    settings: Settings, tiny_models: TinyModels
) -> None:
    with pytest.raises(EngineUnavailable, match="IMAGINE_OPENVINO_WEIGHTS='int4' is not valid"):
        create_engine(
            diffusers_settings(settings, tiny_models.pipeline, IMAGINE_OPENVINO_WEIGHTS="int4")
        )
    from imagine.engines.diffusers_device import choose_backend

    with pytest.raises(EngineUnavailable, match="runs Stable Diffusion and SDXL models"):
        choose_backend("openvino", "flux-schnell")


async def test_tiny_sdxl_renders_through_openvino(
    settings: Settings, tmp_path: Path, tiny_sdxl: Path
) -> None:
    chosen = diffusers_settings(settings, tiny_sdxl, IMAGINE_DEVICE="openvino")
    engine = await started(chosen.with_(data_dir=tmp_path))
    try:
        tiles = await engine.generate(request(seeds=(1, 2)), no_progress)
    finally:
        await engine.close()

    assert [tile.size for tile in tiles] == [(64, 64)] * 2
    assert np.abs(pixels(tiles[0]) - pixels(tiles[1])).mean() > 5
