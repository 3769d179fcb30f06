"""Shared pieces of the remote-engine tests: fast retries and timeouts, requests, a progress log."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest
from aiohttp.test_utils import TestServer
from PIL import Image

from imagine.engines.base import EngineCancelled, GenerateRequest
from imagine.engines.remote import RetryPolicy, Timeouts
from tests.engines.remote.stubserver import StubServer

FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.02)
FAST_TIMEOUTS = Timeouts(connect=1.0, light=1.0, render=0.6)
SEEDS = (40, 41, 42, 43)

S = TypeVar("S", bound=StubServer)


class ProgressLog:
    """A progress callback that records what it is told and can cancel the job."""

    def __init__(self, cancel_when: Callable[[float], bool] | None = None) -> None:
        self.fractions: list[float] = []
        self.previews: list[Image.Image] = []
        self.cancel_when = cancel_when

    def __call__(self, fraction: float, preview: Image.Image | None = None) -> None:
        self.fractions.append(fraction)
        if preview is not None:
            self.previews.append(preview)
        if self.cancel_when is not None and self.cancel_when(fraction):
            raise EngineCancelled()


def txt2img(**changes: object) -> GenerateRequest:
    fields: dict[str, object] = {
        "prompt": "a red fox in snow",
        "negative_prompt": "blurry",
        "width": 64,
        "height": 48,
        "seeds": SEEDS,
    }
    return GenerateRequest(**(fields | changes))  # type: ignore[arg-type]


def init_image() -> Image.Image:
    image = Image.new("RGB", (64, 48), (200, 30, 30))
    image.paste((10, 200, 10), (0, 0, 32, 48))
    return image


def outpaint_mask() -> Image.Image:
    mask = Image.new("L", (64, 48), 0)
    mask.paste(255, (48, 0, 64, 48))
    return mask


def closed_port_url() -> str:
    """An address on 127.0.0.1 where nothing listens: connecting fails at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


StartStub = Callable[[S], Awaitable[TestServer]]


@pytest.fixture
async def serve(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> AsyncIterator[StartStub[StubServer]]:
    """Start a stub on 127.0.0.1; hanging handlers are released when the test ends."""
    started: list[StubServer] = []

    async def start(stub: StubServer) -> TestServer:
        started.append(stub)
        return await aiohttp_server(stub.app())

    yield start
    for stub in started:
        stub.released.set()
