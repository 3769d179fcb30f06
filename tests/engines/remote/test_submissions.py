"""Submissions (work the server queues, which costs GPU time, kudos or money) are sent once.

A proxy's 502 or 504 may come after the server took the job; sending it again would queue it
twice. Only a refused connection (nothing was sent) and a 503 (not taken) are tried again. Reads
and polls go on retrying every 5xx (tests/engines/remote/test_remote.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image

from imagine.codes import ResultCode
from imagine.engines.a1111 import A1111Engine
from imagine.engines.base import EngineError, GenerateRequest, ProgressCallback
from imagine.engines.comfyui import ComfyUIEngine
from imagine.engines.horde import HordeEngine
from imagine.engines.openai_images import OpenAIEngine
from imagine.engines.remote import Hints, RemoteService, RetryPolicy
from tests.engines.remote.a1111_stub import A1111Stub
from tests.engines.remote.comfyui_stub import CHECKPOINTS, ComfyUIStub
from tests.engines.remote.conftest import (
    FAST_RETRY,
    FAST_TIMEOUTS,
    ProgressLog,
    StartStub,
    closed_port_url,
    init_image,
    txt2img,
)
from tests.engines.remote.horde_stub import HordeStub
from tests.engines.remote.openai_stub import OpenAIStub
from tests.engines.remote.stubserver import StubServer, seed_colour

FAST = {"retry": FAST_RETRY, "timeouts": FAST_TIMEOUTS, "poll_interval": 0.02}


class RemoteEngine(Protocol):
    async def generate(
        self, request: GenerateRequest, progress: ProgressCallback
    ) -> list[Image.Image]: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Case:
    """One engine's submission: its stub, the path it submits to, how many jobs the server holds."""

    stub: Callable[[], StubServer]
    engine: Callable[[TestServer], RemoteEngine]
    path: str
    taken: Callable[[Any], int]
    request: GenerateRequest = field(default_factory=lambda: txt2img(seeds=(5,)))


CASES = {
    "a1111": Case(
        A1111Stub,
        lambda server: A1111Engine(str(server.make_url("")), **FAST),
        "/sdapi/v1/txt2img",
        lambda stub: stub.renders,
    ),
    "comfyui": Case(
        ComfyUIStub,
        lambda server: ComfyUIEngine(str(server.make_url("")), checkpoint=CHECKPOINTS[0], **FAST),
        "/prompt",
        lambda stub: len(stub.prompts),
    ),
    "horde": Case(
        HordeStub,
        lambda server: HordeEngine(str(server.make_url("/api")), **FAST),
        "/api/v2/generate/async",
        lambda stub: len(stub.requests),
    ),
    "openai": Case(
        OpenAIStub,
        lambda server: OpenAIEngine("sk-test", base_url=str(server.make_url("/v1")), **FAST),
        "/v1/images/generations",
        lambda stub: stub.next_seed - 1,  # images it made (and billed)
    ),
    "openai edit": Case(
        OpenAIStub,
        lambda server: OpenAIEngine("sk-test", base_url=str(server.make_url("/v1")), **FAST),
        "/v1/images/edits",
        lambda stub: stub.next_seed - 1,
        txt2img(seeds=(5,), init_image=init_image()),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_a_submission_the_server_may_have_taken_is_not_sent_again(
    serve: StartStub[StubServer], name: str
) -> None:
    case = CASES[name]
    stub = case.stub()
    engine = case.engine(await serve(stub))
    stub.take_then_fail(case.path, 502)  # the server queued it; the proxy lost the answer
    try:
        with pytest.raises(EngineError) as caught:
            await engine.generate(case.request, ProgressLog())
    finally:
        await engine.close()

    assert stub.hits[case.path] == 1
    assert case.taken(stub) == 1  # queued once: no second bill
    assert caught.value.code is ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND
    message = caught.value.message
    assert "HTTP 502" in message
    assert "not sent again" in message
    assert "Try again" in message
    assert "\n" not in message


@pytest.mark.parametrize("name", list(CASES))
async def test_a_503_submission_is_sent_again_and_succeeds(
    serve: StartStub[StubServer], name: str
) -> None:
    case = CASES[name]
    stub = case.stub()
    engine = case.engine(await serve(stub))
    stub.fail_next(case.path, 503)  # answered before the route: the server did not take it
    try:
        tiles = await engine.generate(case.request, ProgressLog())
    finally:
        await engine.close()

    assert stub.hits[case.path] == 2
    assert case.taken(stub) == 1
    assert len(tiles) == 1
    if name in ("a1111", "comfyui", "horde"):  # OpenAI has no seeds
        assert tiles[0].getpixel((0, 0)) == seed_colour(5)


class SubmitStub(StubServer):
    """POST /jobs takes a job; /drop breaks the connection once it has the request."""

    def __init__(self) -> None:
        super().__init__()
        self.jobs = 0

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/jobs", self.take), web.post("/drop", self.drop)]

    async def take(self, request: web.Request) -> web.Response:
        self.jobs += 1
        return web.json_response({"id": self.jobs})

    async def drop(self, request: web.Request) -> web.Response:
        self.jobs += 1
        assert request.transport is not None
        request.transport.close()
        return web.json_response({"id": self.jobs})


def service_for(url: str, retry: RetryPolicy = FAST_RETRY) -> RemoteService:
    hints = Hints(url="TEST_URL", auth="TEST_KEY")
    return RemoteService("Test", url, hints=hints, retry=retry, timeouts=FAST_TIMEOUTS)


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_a_5xx_other_than_503_ends_a_submission_but_a_read_goes_on(
    serve: StartStub[SubmitStub], status: int
) -> None:
    stub = SubmitStub()
    service = service_for(str((await serve(stub)).make_url("")))
    stub.take_then_fail("/jobs", status, {"detail": "upstream went away"})
    with pytest.raises(EngineError) as caught:
        await service.json("POST", "/jobs", json_body={}, submit=True)
    assert stub.jobs == 1
    assert f"HTTP {status} (upstream went away)" in caught.value.message

    stub.take_then_fail("/jobs", status)
    assert await service.json("POST", "/jobs", json_body={}) == {"id": 3}  # not a submission
    await service.close()
    assert stub.hits["/jobs"] == 3


async def test_a_connection_dropped_after_sending_is_not_sent_again(
    serve: StartStub[SubmitStub],
) -> None:
    stub = SubmitStub()
    service = service_for(str((await serve(stub)).make_url("")))
    with pytest.raises(EngineError) as caught:
        await service.json("POST", "/drop", json_body={}, submit=True)
    await service.close()
    assert stub.jobs == 1
    assert caught.value.code is ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND
    assert "dropped the connection" in caught.value.message
    assert "not sent again" in caught.value.message


async def test_a_slow_submission_is_not_sent_again(serve: StartStub[SubmitStub]) -> None:
    stub = SubmitStub()
    service = service_for(str((await serve(stub)).make_url("")))
    stub.hang("/jobs")
    with pytest.raises(EngineError) as caught:
        await service.json("POST", "/jobs", json_body={}, submit=True)
    await service.close()
    assert stub.hits["/jobs"] == 1
    assert caught.value.code is ResultCode.BOT_TOOK_TOO_LONG_TO_PROCESS_YOUR_COMMAND


async def test_a_refused_connection_is_tried_again_even_for_a_submission(
    aiohttp_server: Callable[..., Awaitable[TestServer]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="imagine.engines.remote")
    url = closed_port_url()
    service = service_for(url, RetryPolicy(attempts=3, backoff=0.5, max_backoff=0.5))
    stub = SubmitStub()
    task = asyncio.create_task(service.json("POST", "/jobs", json_body={}, submit=True))
    async with asyncio.timeout(5):
        while not any("try 1 of POST /jobs failed" in r.getMessage() for r in caplog.records):
            await asyncio.sleep(0.005)
    await aiohttp_server(stub.app(), port=int(url.rsplit(":", 1)[1]))  # the server comes up
    assert await task == {"id": 1}
    await service.close()
    assert stub.hits["/jobs"] == 1
