"""A real S3 API on loopback: moto's server mode, one per test session, a fresh bucket per test.

moto speaks the S3 REST protocol over HTTP as AWS, MinIO or R2 do, so the code under test goes
through its real client (signing, path-style URLs, XML errors, timeouts), not through a mock.
It accepts any credentials; these are the ones the tests use.

tests/conftest.py loads this module as a plugin, so any test may ask for ``s3_server`` or
``s3_bucket``. moto and boto3 are imported only when a test does (they take a second to import).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    """``http://127.0.0.1:<port>``: what IMAGINE_S3_ENDPOINT would say."""
    environ: dict[str, str] = field(default_factory=dict)
    """The AWS_* variables a service needs to talk to it."""

    def client(self) -> Any:
        """A boto3 client, to set up and inspect the server independently of the code tested."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )


@dataclass(frozen=True)
class S3Bucket:
    server: S3Server
    name: str

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    @property
    def environ(self) -> dict[str, str]:
        return self.server.environ

    def object_keys(self) -> list[str]:
        """Every key in the bucket, sorted, as S3 itself lists them."""
        pages = self.server.client().get_paginator("list_objects_v2").paginate(Bucket=self.name)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    from moto.server import ThreadedMotoServer

    # Werkzeug logs every request at INFO on its own stderr handler; keep the failures only.
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)
    # Port 0: the OS picks a free port as it binds, so no two runs race for one.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Server(
            endpoint=f"http://{host}:{port}", environ={**CREDENTIALS, "AWS_REGION": REGION}
        )
    finally:
        server.stop()
        werkzeug.setLevel(level)


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> S3Bucket:
    """A bucket of its own for each test (the server outlives it, so names never repeat)."""
    name = f"test-{secrets.token_hex(6)}"
    s3_server.client().create_bucket(Bucket=name)
    return S3Bucket(server=s3_server, name=name)
