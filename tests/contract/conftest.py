"""The contract tests use the service tests' clients (the real app on a real database), and the
engine tests' tiny models for the diffusers engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engines.conftest import tiny_models  # noqa: F401 (a fixture)
from tests.service.conftest import make_client  # noqa: F401 (a fixture)


@pytest.fixture(scope="session")
def tiny_captioner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny randomly initialised BLIP captioner, saved where the engine loads it from."""
    pytest.importorskip("transformers", reason="the local extra is not installed")
    from tests.engines.tiny_caption import build_tiny_blip

    return build_tiny_blip(tmp_path_factory.mktemp("models") / "tiny-blip")
