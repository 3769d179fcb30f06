"""``IMAGINE_ENGINE=auto``: the diffusers engine where a model can be had, else the placeholder
that says why, through the real app's ``/v2/info``. Nothing here downloads: the Hugging Face
cache is an empty folder and the Hub a closed port on loopback."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from imagine.app import create_app
from imagine.engines import auto, create_engine
from imagine.settings import Settings
from tests.engines.conftest import TinyModels

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def auto_settings(settings: Settings, tmp_path: Path, **environ: str) -> Settings:
    empty_cache = tmp_path / "hf-cache"
    empty_cache.mkdir(exist_ok=True)
    return settings.with_(engine="auto", environ={"HF_HUB_CACHE": str(empty_cache), **environ})


def test_auto_is_the_default_in_the_environment() -> None:
    assert Settings.from_env({}).engine == "auto"
    assert Settings.from_env({"IMAGINE_ENGINE": "placeholder"}).engine == "placeholder"
    assert Settings().engine == "placeholder"  # built in code (tests): never probes


async def test_offline_without_the_model_falls_back_with_a_sentence_in_info(
    settings: Settings,
    tmp_path: Path,
    aiohttp_client: type[TestClient],  # type: ignore[type-arg]
    caplog: pytest.LogCaptureFixture,
) -> None:
    chosen = auto_settings(settings, tmp_path, HF_HUB_OFFLINE="1")
    with caplog.at_level(logging.WARNING, logger="imagine.engines.auto"):
        app = create_app(chosen)
    client = await aiohttp_client(app)  # type: ignore[operator]

    info = await (await client.get("/v2/info")).json()

    assert info["placeholder"] is True
    [sentence] = [note for note in info["notes"] if "IMAGINE_ENGINE=auto" in note]
    assert "'stabilityai/sd-turbo' is not in the Hugging Face cache" in sentence
    assert "HF_HUB_OFFLINE=1" in sentence
    assert "hf download stabilityai/sd-turbo" in sentence
    assert sentence.endswith(".")
    said = [r.getMessage() for r in caplog.records if r.name == "imagine.engines.auto"]
    assert said == [sentence]


async def test_no_network_falls_back_at_once(settings: Settings, tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    chosen = auto_settings(settings, tmp_path, HF_ENDPOINT=endpoint)

    engine = create_engine(chosen)

    assert engine.capabilities.is_placeholder
    [sentence] = [note for note in engine.capabilities.notes if "IMAGINE_ENGINE=auto" in note]
    assert "the Hub could not be reached" in sentence
    assert "connect this machine to the internet" in sentence


async def test_without_the_local_extra_the_sentence_says_how_to_install_it(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # as if one package of the extra were missing: the lookup is the real importlib's
    monkeypatch.setattr(auto, "LOCAL_EXTRA", ("torch", "imagine_no_such_package"))

    engine = create_engine(auto_settings(settings, tmp_path))

    assert engine.capabilities.is_placeholder
    [sentence] = [note for note in engine.capabilities.notes if "IMAGINE_ENGINE=auto" in note]
    assert "'imagine_no_such_package'" in sentence
    assert "pip install -e '.[local]'" in sentence


async def test_a_model_that_can_be_had_gets_the_diffusers_engine(
    settings: Settings, tmp_path: Path, tiny_models: TinyModels
) -> None:
    chosen = auto_settings(settings, tmp_path, HF_HUB_OFFLINE="1", IMAGINE_DEVICE="cpu")

    engine = create_engine(chosen.with_(model=str(tiny_models.pipeline)))
    await engine.start()
    try:
        assert not engine.capabilities.is_placeholder
        assert engine.capabilities.name == "diffusers"
    finally:
        await engine.close()
