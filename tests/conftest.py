"""Fixtures shared by the whole suite. Test folders are packages (each has an __init__.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagine.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Service settings on a fresh data folder, placeholder engine, private URLs allowed (tests use loopback)."""
    return Settings(data_dir=tmp_path / "data", allow_private_urls=True, environ={})
