"""The shared machinery of remote engines: retries, error sentences, progress, seeds, templates."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from PIL import Image

from imagine.codes import ResultCode
from imagine.engines import comfyui_workflows, imagecodec
from imagine.engines.base import EngineCancelled, EngineError, EngineUnavailable
from imagine.engines.remote import Hints, RemoteService, RetryPolicy, error_detail
from imagine.engines.remote_jobs import ProgressReporter, await_with_ticks, seed_runs
from imagine.engines.remote_settings import parse_url
from tests.engines.remote.conftest import (
    FAST_RETRY,
    FAST_TIMEOUTS,
    ProgressLog,
    StartStub,
    closed_port_url,
)
from tests.engines.remote.stubserver import StubServer, channels


class EchoStub(StubServer):
    """Answers {"ok": true}; /drop closes the connection without an answer."""

    def __init__(self) -> None:
        super().__init__()
        self.drops = 0

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/ok", self.ok), web.get("/drop", self.drop)]

    async def ok(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def drop(self, request: web.Request) -> web.Response:
        self.drops += 1
        if self.drops <= 2:
            assert request.transport is not None
            request.transport.close()
        return web.json_response({"ok": True})


def service_for(url: str, retry: RetryPolicy = FAST_RETRY) -> RemoteService:
    hints = Hints(url="TEST_URL", auth="TEST_KEY")
    return RemoteService("Test", url, hints=hints, retry=retry, timeouts=FAST_TIMEOUTS)


async def test_dropped_connections_are_retried(serve: StartStub[EchoStub]) -> None:
    stub = EchoStub()
    service = service_for(str((await serve(stub)).make_url("")))
    assert await service.json("GET", "/drop") == {"ok": True}
    await service.close()
    assert stub.hits["/drop"] == 3


async def test_an_unreachable_server_is_tried_a_bounded_number_of_times() -> None:
    service = service_for(closed_port_url(), RetryPolicy(attempts=2, backoff=0.01))
    with pytest.raises(EngineError) as caught:
        await service.json("GET", "/ok")
    await service.close()
    assert caught.value.code is ResultCode.FAILED_TO_REQUEST
    assert "after 2 tries" in caught.value.message
    assert "TEST_URL" in caught.value.message


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [
        (401, ResultCode.FAILED_TO_REQUEST, "TEST_KEY"),
        (403, ResultCode.FAILED_TO_REQUEST, "TEST_KEY"),
        (404, ResultCode.FAILED_TO_REQUEST, "TEST_URL"),
        (422, ResultCode.FAILED_TO_REQUEST, "field required"),
        (500, ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND, "after 3 tries"),
    ],
)
async def test_http_failures_become_sentences_with_codes(
    serve: StartStub[EchoStub], status: int, code: ResultCode, words: str
) -> None:
    stub = EchoStub()
    service = service_for(str((await serve(stub)).make_url("")))
    stub.fail_next("/ok", status, {"detail": "field required"}, times=3)
    with pytest.raises(EngineError) as caught:
        await service.json("GET", "/ok")
    await service.close()
    assert caught.value.code is code
    assert words in caught.value.message
    assert "Test at http://127.0.0.1" in caught.value.message
    assert stub.hits["/ok"] == (3 if status >= 500 else 1)


def test_the_backoff_doubles_up_to_a_cap() -> None:
    policy = RetryPolicy(attempts=5, backoff=0.5, max_backoff=3.0)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0]


def test_error_details_are_short_and_flat() -> None:
    assert error_detail({"error": {"message": "bad\n  size"}}) == "bad size"
    assert error_detail({"detail": "x" * 500}).endswith("…")
    assert error_detail("<html>oops</html>") == "<html>oops</html>"


def test_urls_must_be_http() -> None:
    assert parse_url(" http://192.168.1.5:7860/ ", "X_URL") == "http://192.168.1.5:7860"
    with pytest.raises(EngineUnavailable, match="X_URL"):
        parse_url("ftp://host", "X_URL")
    with pytest.raises(EngineUnavailable, match="X_URL"):
        parse_url("localhost:7860", "X_URL")


def test_seeds_split_into_consecutive_runs() -> None:
    assert seed_runs((5, 6, 7, 8)) == [(5, 6, 7, 8)]
    assert seed_runs((5, 9, 10, 2)) == [(5,), (9, 10), (2,)]


def test_progress_never_goes_backwards_and_parts_add_up() -> None:
    log = ProgressLog()
    reporter = ProgressReporter(log, parts=2)
    reporter(0.8)
    reporter(0.2)  # another job on a shared server
    reporter.part(1)
    reporter(0.5)
    reporter.done()
    assert log.fractions == [0.4, 0.4, 0.75, 1.0]


async def test_a_cancel_during_a_wait_stops_the_server_and_propagates() -> None:
    stopped = asyncio.Event()
    log = ProgressLog(cancel_when=lambda _: True)
    reporter = ProgressReporter(log)

    async def stop() -> None:
        stopped.set()

    with pytest.raises(EngineCancelled):
        await await_with_ticks(
            asyncio.sleep(10), interval=0.01, tick=reporter.async_tick, stop=stop
        )
    assert stopped.is_set()


def test_templates_fill_typed_values_and_text() -> None:
    templates = comfyui_workflows.load_templates(None)
    assert set(templates) == {"txt2img", "img2img", "outpaint"}
    values: dict[str, Any] = {"seed": 7, "width": 512, "height": 768, "prompt": 'say "hi"'}
    filled = comfyui_workflows.fill(templates["txt2img"], values)
    assert filled["3"]["inputs"]["seed"] == 7
    assert filled["5"]["inputs"]["width"] == 512
    assert filled["6"]["inputs"]["text"] == 'say "hi"'
    assert templates["txt2img"]["3"]["inputs"]["seed"] == "{{seed}}"  # the template is untouched


def test_a_transparent_hole_where_the_mask_is_white() -> None:
    image = Image.new("RGB", (4, 2), (9, 9, 9))
    mask = Image.new("L", (4, 2), 0)
    mask.putpixel((3, 1), 255)
    holed = imagecodec.with_alpha_hole(image, mask)
    assert channels(holed, 3, 1)[3] == 0
    assert holed.getpixel((0, 0)) == (9, 9, 9, 255)
    with pytest.raises(imagecodec.BadImage):
        imagecodec.decode_image(b"not a picture")
