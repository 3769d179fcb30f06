"""Fixtures for the local engines: a tiny Stable Diffusion pipeline built once per session.

HF_HUB_OFFLINE is set before anything imports huggingface_hub (it reads the variable once), so
no test can reach the network, and the engine's own offline path is the one exercised.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from imagine.engines import create_engine
from imagine.engines.base import Engine
from imagine.settings import Settings


@dataclass(frozen=True)
class TinyModels:
    pipeline: Path
    """A tiny SD pipeline folder; its name says 'turbo', so it gets SD-Turbo's defaults."""
    taesd: Path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    pytest.importorskip("diffusers", reason="the local extra is not installed")
    from tests.engines.tiny_pipeline import build_tiny_pipeline, build_tiny_taesd

    root = tmp_path_factory.mktemp("models")
    return TinyModels(
        pipeline=build_tiny_pipeline(root / "tiny-sd-turbo"),
        taesd=build_tiny_taesd(root / "tiny-taesd"),
    )


@pytest.fixture(scope="session")
def tiny_sdxl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SDXL pipeline folder, named like SDXL-Turbo."""
    pytest.importorskip("diffusers", reason="the local extra is not installed")
    from tests.engines.tiny_pipeline import build_tiny_sdxl

    return build_tiny_sdxl(tmp_path_factory.mktemp("models") / "tiny-sdxl-turbo")


def diffusers_settings(settings: Settings, model: Path | str, **environ: str) -> Settings:
    """Settings for the diffusers engine on ``model``, offline, on PyTorch unless ``environ``
    says otherwise (``IMAGINE_DEVICE=openvino``: tests/engines/test_diffusers_openvino.py)."""
    return settings.with_(
        engine="diffusers",
        model=str(model),
        environ={"HF_HUB_OFFLINE": "1", "IMAGINE_DEVICE": "cpu", **environ},
    )


@pytest.fixture
async def engine(settings: Settings, tiny_models: TinyModels) -> AsyncIterator[Engine]:
    engine = create_engine(diffusers_settings(settings, tiny_models.pipeline))
    await engine.start()
    yield engine
    await engine.close()


@pytest.fixture
async def taesd_engine(settings: Settings, tiny_models: TinyModels) -> AsyncIterator[Engine]:
    environ = {"IMAGINE_TAESD": "1", "IMAGINE_TAESD_MODEL": str(tiny_models.taesd)}
    engine = create_engine(diffusers_settings(settings, tiny_models.pipeline, **environ))
    await engine.start()
    yield engine
    await engine.close()
