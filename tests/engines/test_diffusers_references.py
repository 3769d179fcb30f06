"""The diffusers engine's --sref and --oref (a tiny random IP-Adapter the test builds, loaded
through diffusers' real loader, offline), --stop, and what it says it honours."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagine.codes import ResultCode
from imagine.engines import create_engine
from imagine.engines.base import Engine, EngineError, GenerateRequest, no_progress
from imagine.settings import Settings
from tests.engines.conftest import TinyModels, diffusers_settings

pytest.importorskip("diffusers", reason="the local extra is not installed")

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

RED = Image.new("RGB", (48, 48), (250, 10, 10))
STRIPES = Image.fromarray(
    (np.indices((48, 48)).sum(axis=0) % 8 < 4).astype(np.uint8)[..., None].repeat(3, 2) * 255
)


def request(**changes: object) -> GenerateRequest:
    fields: dict[str, object] = {"prompt": "a red cat", "width": 64, "height": 64, "seeds": (5,)}
    fields.update(changes)
    return GenerateRequest(**fields)  # type: ignore[arg-type]


def difference(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).mean())


@pytest.fixture(scope="module")
def tiny_adapter(tiny_models: TinyModels, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.engines.tiny_ip_adapter import build_tiny_ip_adapter

    return build_tiny_ip_adapter(tmp_path_factory.mktemp("ip-adapter"), tiny_models.pipeline)


@pytest.fixture
async def referencing(
    settings: Settings, tiny_models: TinyModels, tiny_adapter: Path
) -> AsyncIterator[Engine]:
    from tests.engines.tiny_ip_adapter import WEIGHT

    engine = create_engine(
        diffusers_settings(
            settings,
            tiny_models.pipeline,
            IMAGINE_IP_ADAPTER=str(tiny_adapter),
            IMAGINE_IP_ADAPTER_WEIGHT=WEIGHT,
        )
    )
    await engine.start()
    yield engine
    await engine.close()


async def test_it_honours_stop_and_references_but_not_raw_on_a_turbo_model(
    engine: Engine,
) -> None:
    assert engine.capabilities.honours == ("--stop", "--sref", "--oref")


async def test_references_change_the_render_and_weight_zero_changes_nothing(
    engine: Engine, referencing: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    [before] = await referencing.generate(request(), no_progress)  # no adapter loaded yet
    with caplog.at_level("INFO"):
        [styled] = await referencing.generate(request(style_images=(RED,)), no_progress)
    assert "IP-Adapter" in caplog.text
    [striped] = await referencing.generate(request(style_images=(STRIPES,)), no_progress)
    [both] = await referencing.generate(request(style_images=(RED, STRIPES)), no_progress)
    [omni] = await referencing.generate(request(omni_image=RED), no_progress)
    [heavier] = await referencing.generate(request(omni_image=RED, omni_weight=400), no_progress)
    [zero] = await referencing.generate(request(style_images=(RED,), style_weight=0), no_progress)
    [after] = await referencing.generate(request(), no_progress)  # the adapter stays loaded
    [plain] = await engine.generate(request(), no_progress)  # an engine that never loaded it
    assert difference(styled, before) > 1
    assert difference(styled, striped) > 1
    assert difference(both, styled) > 0.1
    assert difference(omni, before) > 1
    assert difference(heavier, omni) > 0.1
    assert difference(zero, before) < 1e-6
    assert difference(after, before) < 1e-6
    assert difference(before, plain) < 1e-6


async def test_references_work_from_an_image_too(referencing: Engine) -> None:
    init = Image.new("RGB", (64, 64), (40, 90, 200))
    [plain] = await referencing.generate(request(init_image=init, strength=0.8), no_progress)
    [styled] = await referencing.generate(
        request(init_image=init, strength=0.8, style_images=(RED,)), no_progress
    )
    assert difference(plain, styled) > 1


async def test_a_missing_adapter_is_a_sentence(engine: Engine) -> None:
    with pytest.raises(EngineError) as caught:
        await engine.generate(request(style_images=(RED,)), no_progress)
    assert caught.value.code is ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND
    assert "The IP-Adapter for --sref and --oref could not be loaded" in caught.value.message
    assert "IMAGINE_IP_ADAPTER" in caught.value.message


async def test_references_off_when_the_setting_is_empty(
    settings: Settings, tiny_models: TinyModels
) -> None:
    engine = create_engine(
        diffusers_settings(settings, tiny_models.pipeline, IMAGINE_IP_ADAPTER="")
    )
    await engine.start()
    try:
        assert engine.capabilities.honours == ("--stop",)
    finally:
        await engine.close()


async def test_stop_ends_denoising_early(engine: Engine) -> None:
    fractions: list[float] = []

    def progress(fraction: float, preview: Image.Image | None = None) -> None:
        fractions.append(fraction)

    [full] = await engine.generate(request(steps=4), no_progress)
    [same] = await engine.generate(request(steps=4, extra={"stop": 100}), no_progress)
    [half] = await engine.generate(request(steps=4, extra={"stop": 50}), progress)
    assert difference(full, same) < 1e-6
    assert difference(full, half) > 1
    assert len([f for f in fractions if f < 1.0]) == 2  # two steps of four ran
