"""schemathesis against /openapi.json: no 5xx, and every response matches the documented schema.

It draws bodies, query strings, path parameters and the documented headers (Content-Encoding with
any value, on top of a JSON body that is not compressed).

The service runs as a subprocess on loopback. Image URLs and webhooks are limited to a host list that
refuses everything (IMAGINE_URL_HOSTS), so generated links are refused before any connection is tried.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from imagine.openapi import spec

TOKEN = "fuzz-token"
# the speed prefixes (/mj-fast/mj/…) route to the very handlers /mj/… does: fuzzed once, not four times
schema = schemathesis.openapi.from_dict(spec("http://127.0.0.1")).exclude(path_regex="^/mj-")


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = tmp_path_factory.mktemp("fuzz")
    env = {**os.environ, "IMAGINE_DATA_DIR": str(data), "IMAGINE_PORT": str(port), "IMAGINE_API_TOKENS": TOKEN,
           "IMAGINE_PLACEHOLDER_SECONDS": "3600", "IMAGINE_URL_HOSTS": "refused.invalid",
           "IMAGINE_RATE_PER_TOKEN": "0", "IMAGINE_RATE_PER_USER": "0",
           "IMAGINE_SHUTDOWN_GRACE": "0"}  # fmt: skip
    log = (Path(data) / "service.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "imagine", "serve"], env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if requests.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.05)
    yield url
    process.terminate()
    process.wait(timeout=10)
    log.close()
    assert "Traceback" not in (Path(data) / "service.log").read_text()


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_fails_and_matches_its_schema(case: schemathesis.Case, base_url: str) -> None:
    # Lenient where the contract is (null fields count as absent, unknown query keys are ignored), so the
    # strict positive/negative-data checks are left out; everything a client relies on is checked.
    case.call_and_validate(
        base_url=base_url,
        headers={"Authorization": f"Bearer {TOKEN}"},
        checks=[
            checks.not_a_server_error,
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_schema_conformance,
            checks.response_headers_conformance,
            checks.unsupported_method,
            checks.ignored_auth,
        ],
    )
