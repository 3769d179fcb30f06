"""Running a test module's service tests on each backend.

``from tests.backends import on_every_backend as backend`` in a test module overrides the
suite's ``backend`` fixture (SQLite) for that module, so every test that uses ``settings`` runs
once per backend.
"""

from __future__ import annotations

import pytest

BACKENDS = ["sqlite", "postgres", "postgres+s3"]
"""Where the service keeps its jobs and images: SQLite and the data folder (one machine), a
throwaway PostgreSQL, or PostgreSQL with a real S3 API (moto) for the images (distributed)."""


@pytest.fixture(params=BACKENDS, name="backend")
def on_every_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=BACKENDS[:2], name="backend")
def on_both_databases(request: pytest.FixtureRequest) -> str:
    """SQLite and PostgreSQL, with the images in the data folder."""
    return str(request.param)
