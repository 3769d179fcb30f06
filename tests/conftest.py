"""Fixtures shared by the whole suite. Test folders are packages (each has an __init__.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from imagine.settings import Settings

# The same examples on every run, so a red CI points at a change and not at luck; the "explore"
# profile (HYPOTHESIS_PROFILE=explore) draws new ones and is how to hunt for fresh bugs.
hypothesis_settings.register_profile("default", derandomize=True, database=None)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Service settings on a fresh data folder, placeholder engine, private URLs allowed (tests use loopback)."""
    return Settings(data_dir=tmp_path / "data", allow_private_urls=True, environ={})
