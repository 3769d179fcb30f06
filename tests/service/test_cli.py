"""``python -m imagine generate`` renders one grid with no server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PIL import Image


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IMAGINE_ENGINE": "placeholder"}
    return subprocess.run(
        [sys.executable, "-m", "imagine", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_generate_writes_a_grid(tmp_path: Path) -> None:
    result = run(
        "generate",
        "a lighthouse at dusk --ar 16:9 --seed 7",
        "-o",
        str(tmp_path / "grid.webp"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "grid.webp") as grid:
        assert grid.format == "WEBP"
        assert abs(grid.width / grid.height - 16 / 9) < 0.05
    assert "seeds 7, 8, 9, 10" in result.stdout


def test_generate_refuses_a_bad_parameter_in_words(tmp_path: Path) -> None:
    result = run("generate", "a cat --chaos 500", cwd=tmp_path)
    assert result.returncode == 1
    assert "--chaos" in result.stderr
    assert "Traceback" not in result.stderr
