"""Fixtures shared by the whole suite. Test folders are packages (each has an __init__.py)."""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
from collections.abc import Generator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from imagine.settings import Settings

pytest_plugins = ["tests.infra.postgres", "tests.infra.s3"]

# Every service and bot a test starts draws patterns, never probes for a model (the environment's
# default is auto): a test that wants another engine says so.
os.environ.setdefault("IMAGINE_ENGINE", "placeholder")

# The same examples on every run, so a red CI points at a change and not at luck; the "explore"
# profile (HYPOTHESIS_PROFILE=explore) draws new ones and is how to hunt for fresh bugs.
hypothesis_settings.register_profile("default", derandomize=True, database=None)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

HARD_LIMIT = 420.0
"""Seconds one test may take, cleanup included, before the whole run ends with every thread's stack.

pytest-timeout (300 s, signal method) fails a hung test, but its alarm fires once: a cleanup that
then hangs too (an event loop waiting for a stuck thread) would stall CI until it is killed, with
nothing printed. This watchdog ends such a run within minutes and says where it stood."""


def _end_the_run(config: pytest.Config, what: str) -> None:
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.suspend_global_capture(in_=True)
    sys.stderr.write(f"\n\n{what}: every thread's stack follows, and the run ends here.\n")
    sys.stderr.flush()
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.stderr.flush()
    os._exit(3)


def _watch(config: pytest.Config, finished: threading.Event, seconds: float, what: str) -> None:
    def watchdog() -> None:
        if not finished.wait(seconds):
            _end_the_run(config, what)

    threading.Thread(target=watchdog, name="hard-test-limit", daemon=True).start()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    finished = threading.Event()
    _watch(item.config, finished, HARD_LIMIT, f"{item.nodeid} still runs after {HARD_LIMIT:.0f} s")
    try:
        return (yield)
    finally:
        finished.set()


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Interpreter exit joins worker threads; one that never ends would hang the run after its summary.
    _watch(
        session.config,
        threading.Event(),
        120.0,
        "the test process has not exited 120 s after the run",
    )


@pytest.fixture
def backend() -> str:
    """The backend of the ``settings`` fixture (see tests/backends.py to run on each)."""
    return "sqlite"


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    """Service settings on a fresh data folder, placeholder engine, private URLs allowed (tests use loopback)."""
    chosen = Settings(data_dir=tmp_path / "data", allow_private_urls=True, environ={})
    if backend.startswith("postgres"):
        chosen = chosen.with_(database_url=request.getfixturevalue("pg_url"))
    if backend.endswith("+s3"):
        bucket = request.getfixturevalue("s3_bucket")
        chosen = chosen.with_(
            storage_url=f"s3://{bucket.name}/imagine",
            s3_endpoint=bucket.endpoint,
            environ=dict(bucket.environ),
        )
    return chosen
