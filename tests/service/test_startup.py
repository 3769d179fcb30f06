"""A data folder that cannot be used stops the service at start-up with a sentence, and loses nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def serve(data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "IMAGINE_DATA_DIR": str(data_dir), "IMAGINE_PORT": "0", **env}
    return subprocess.run(
        [sys.executable, "-m", "imagine", "serve"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_corrupt_database_is_a_clear_error_and_the_file_is_kept(tmp_path: Path) -> None:
    database = tmp_path / "jobs.sqlite3"
    garbage = b"this is not a database" * 100
    database.write_bytes(garbage)
    result = serve(tmp_path)
    assert result.returncode == 2
    assert "cannot be used" in result.stderr
    assert "move it aside" in result.stderr
    assert "Traceback" not in result.stderr
    assert database.read_bytes() == garbage  # nothing overwritten


def test_data_folder_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file, not a folder")
    result = serve(blocker)
    assert result.returncode == 2
    assert "Cannot open the job database" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders anyway")
def test_read_only_data_folder_is_a_clear_error(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        result = serve(tmp_path)
    finally:
        tmp_path.chmod(0o700)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_open_binding_without_tokens_is_refused(tmp_path: Path) -> None:
    result = serve(tmp_path, IMAGINE_HOST="0.0.0.0", IMAGINE_API_TOKENS="")
    assert result.returncode == 2
    assert "IMAGINE_API_TOKENS" in result.stderr


def test_bad_setting_is_a_clear_error(tmp_path: Path) -> None:
    result = serve(tmp_path, IMAGINE_MAX_CONCURRENT="lots")
    assert result.returncode == 2
    assert "IMAGINE_MAX_CONCURRENT must be a whole number" in result.stderr


def test_unknown_engine_is_a_clear_error(tmp_path: Path) -> None:
    result = serve(tmp_path, IMAGINE_ENGINE="dall-e-9")
    assert result.returncode == 2
    assert "choose one of" in result.stderr
