"""Starting the diffusers engine: model families, and every start-up failure as one sentence."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from imagine.codes import ResultCode
from imagine.engines import create_engine
from imagine.engines.base import (
    Engine,
    EngineError,
    EngineUnavailable,
    GenerateRequest,
    no_progress,
)
from imagine.settings import Settings
from tests.engines.conftest import TinyModels, diffusers_settings

pytest.importorskip("diffusers", reason="the local extra is not installed")

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def request(**changes: object) -> GenerateRequest:
    fields: dict[str, object] = {"prompt": "a cat", "width": 64, "height": 64, "seeds": (1,)}
    fields.update(changes)
    return GenerateRequest(**fields)  # type: ignore[arg-type]


async def test_unknown_model_in_a_request_fails_and_the_engine_keeps_its_own(
    engine: Engine, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-model"

    with pytest.raises(EngineError) as caught:
        await engine.generate(request(model=str(missing)), no_progress)

    assert caught.value.code is ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND
    assert str(missing) in caught.value.message
    assert len(await engine.generate(request(), no_progress)) == 1


def _one_sentence(message: str) -> bool:
    return "\n" not in message and message.endswith(".") and "Traceback" not in message


async def test_missing_model_folder_is_one_sentence(settings: Settings, tmp_path: Path) -> None:
    missing = tmp_path / "models" / "sd-turbo"
    engine = create_engine(diffusers_settings(settings, missing))

    with pytest.raises(EngineUnavailable) as caught:
        await engine.start()
    await engine.close()

    assert str(missing) in str(caught.value)
    assert _one_sentence(str(caught.value))


async def test_model_missing_offline_is_one_sentence(settings: Settings) -> None:
    engine = create_engine(diffusers_settings(settings, "nobody-here/no-such-model"))

    with pytest.raises(EngineUnavailable) as caught:
        await engine.start()
    await engine.close()

    message = str(caught.value)
    assert "nobody-here/no-such-model" in message
    assert "HF_HUB_OFFLINE" in message
    assert _one_sentence(message)


async def test_missing_extra_is_one_sentence(
    settings: Settings, tiny_models: TinyModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "imagine.engines.diffusers_load", raising=False)
    monkeypatch.setitem(sys.modules, "diffusers", None)  # import diffusers now fails
    engine = create_engine(diffusers_settings(settings, tiny_models.pipeline))

    with pytest.raises(EngineUnavailable) as caught:
        await engine.start()
    await engine.close()

    assert "pip install -e '.[local]'" in str(caught.value)
    assert _one_sentence(str(caught.value))


@pytest.mark.parametrize(
    ("variable", "value"),
    [("IMAGINE_MODEL_FAMILY", "sd-3000"), ("IMAGINE_UPSCALER", "bicubic")],
)
def test_bad_settings_are_one_sentence(settings: Settings, variable: str, value: str) -> None:
    with pytest.raises(EngineUnavailable) as caught:
        create_engine(diffusers_settings(settings, "x", **{variable: value}))

    assert variable in str(caught.value)
    assert _one_sentence(str(caught.value))


def test_choosing_the_engine_does_not_import_torch() -> None:
    code = (
        "import sys; from imagine.engines import diffusers_engine, create_engine; "
        "print('torch' in sys.modules, 'diffusers' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    ("class_name", "model", "config", "family"),
    [
        ("StableDiffusionPipeline", "stabilityai/sd-turbo", {}, "sd-turbo"),
        ("StableDiffusionPipeline", "runwayml/stable-diffusion-v1-5", {}, "sd"),
        ("StableDiffusionXLPipeline", "stabilityai/sdxl-turbo", {}, "sdxl-turbo"),
        ("StableDiffusionXLPipeline", "stabilityai/stable-diffusion-xl-base-1.0", {}, "sdxl"),
        (
            "FluxPipeline",
            "black-forest-labs/FLUX.1-schnell",
            {"guidance_embeds": False},
            "flux-schnell",
        ),
        ("FluxPipeline", "/models/my-flux", {"guidance_embeds": True}, "flux"),
        ("StableDiffusion3Pipeline", "stabilityai/stable-diffusion-3-medium", {}, "other"),
    ],
)
def test_family_detection(
    class_name: str, model: str, config: dict[str, object], family: str
) -> None:
    from imagine.engines.diffusers_load import detect_family

    assert detect_family(class_name, model, config).name == family


@pytest.mark.parametrize(
    ("steps", "strength", "expected"), [(1, 0.3, 4), (1, 0.5, 2), (1, 1.0, 1), (4, 0.5, 4)]
)
def test_img2img_runs_at_least_one_step(steps: int, strength: float, expected: int) -> None:
    from imagine.engines.diffusers_render import img2img_steps

    assert img2img_steps(steps, strength) == expected
    assert int(img2img_steps(steps, strength) * strength) >= 1


def test_the_engine_knows_every_family() -> None:
    from imagine.engines.diffusers_engine import FAMILY_NAMES
    from imagine.engines.diffusers_load import FAMILIES

    assert set(FAMILY_NAMES) == set(FAMILIES)


@pytest.mark.parametrize("device", ["gpu", "cuda"])
async def test_unusable_device_is_one_sentence(
    settings: Settings, tiny_models: TinyModels, device: str
) -> None:
    torch = pytest.importorskip("torch")
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    engine = create_engine(
        diffusers_settings(settings, tiny_models.pipeline, IMAGINE_DEVICE=device)
    )

    with pytest.raises(EngineUnavailable) as caught:
        await engine.start()
    await engine.close()

    assert f"IMAGINE_DEVICE={device!r}" in str(caught.value)
    assert _one_sentence(str(caught.value))


async def test_after_a_v_job_plain_prompts_use_the_configured_model_again(
    engine: Engine, tiny_models: TinyModels, tmp_path: Path
) -> None:
    import shutil

    other = tmp_path / "tiny-sd-turbo-other"
    shutil.copytree(tiny_models.pipeline, other)
    await engine.generate(request(model=str(other)), no_progress)
    assert engine._loaded.model == str(other)  # type: ignore[attr-defined]
    await engine.generate(request(), no_progress)  # no --v: the server's own model
    assert engine._loaded.model == str(tiny_models.pipeline)  # type: ignore[attr-defined]


async def test_quality_and_stylize_reach_the_pipeline(engine: Engine) -> None:
    from imagine.prompt import parse, plan_generation

    caps = engine.capabilities
    assert caps.default_steps is not None
    assert caps.default_guidance is not None
    [prompt] = parse("a cat --q 2")
    planned = plan_generation(prompt, caps, seeds=(1,), models={}, default_model=None)
    assert planned.steps == max(1, round(caps.default_steps * 2))


BROKEN_INDEX = (
    '{"_class_name": "StableDiffusionPipeline",\n  "unet": ["diffusers" "UNet2DConditionModel"]\n'
)


async def test_a_broken_model_index_in_a_folder_names_the_file_and_the_error(
    settings: Settings, tiny_models: TinyModels, tmp_path: Path
) -> None:
    import shutil

    folder = tmp_path / "tiny-sd-turbo-broken"
    shutil.copytree(tiny_models.pipeline, folder)
    index = folder / "model_index.json"
    index.write_text(BROKEN_INDEX, encoding="utf-8")  # a lost comma, as a hand edit leaves it
    engine = create_engine(diffusers_settings(settings, folder))

    with pytest.raises(EngineUnavailable) as caught:
        await engine.start()
    await engine.close()

    message = str(caught.value)
    assert str(index) in message
    assert "not valid JSON" in message
    assert "line 2, column" in message
    assert "hf download" not in message  # it is there: downloading would not help
    assert "neither a local diffusers folder" not in message
    assert _one_sentence(message)


async def test_a_folder_without_a_model_index_says_so(
    settings: Settings, tiny_models: TinyModels, tmp_path: Path
) -> None:
    folder = tmp_path / "not-a-pipeline"
    (folder / "unet").mkdir(parents=True)
    engine = create_engine(diffusers_settings(settings, folder))

    with pytest.raises(EngineUnavailable) as caught:
        await engine.start()
    await engine.close()

    message = str(caught.value)
    assert str(folder) in message
    assert "has no model_index.json" in message
    assert "hf download" not in message
    assert _one_sentence(message)


async def test_a_broken_model_index_in_the_hub_cache_names_the_file(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    # The Hugging Face cache's own layout: refs/main names the snapshot that holds the files.
    repo = tmp_path / "hub" / "models--someone--tiny-sd-turbo"
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40, encoding="utf-8")
    (snapshot / "model_index.json").write_text(BROKEN_INDEX, encoding="utf-8")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    engine = create_engine(diffusers_settings(settings, "someone/tiny-sd-turbo"))

    with pytest.raises(EngineUnavailable) as caught:
        await engine.start()
    await engine.close()

    message = str(caught.value)
    assert str(snapshot / "model_index.json") in message
    assert "not valid JSON" in message
    assert _one_sentence(message)
