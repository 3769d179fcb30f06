"""An engine that raises, hangs or returns garbage: the job fails with a result code, the worker goes on."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from PIL import Image

from imagine.codes import ResultCode
from imagine.engines.base import EngineError, GenerateRequest, ProgressCallback
from imagine.engines.placeholder import PlaceholderEngine
from imagine.images import blocked_tile
from tests.service.conftest import ClientFactory, fetch_image, submit, wait_done


class FaultyEngine(PlaceholderEngine):
    """The placeholder, except for prompts that name a fault."""

    async def generate(
        self, request: GenerateRequest, progress: ProgressCallback
    ) -> list[Image.Image]:
        if "raise" in request.prompt:
            raise RuntimeError("CUDA out of memory (simulated)")
        if "refuse" in request.prompt:
            raise EngineError(
                ResultCode.IMAGE_BLOCKED, "The engine's safety checker refused the result."
            )
        if "hang-thread" in request.prompt:

            def spin() -> list[Image.Image]:
                while True:  # a stuck step loop that still reports progress
                    progress(0.5, None)
                    time.sleep(0.01)

            return await asyncio.to_thread(spin)
        if "hang" in request.prompt:
            await asyncio.Event().wait()
        if "garbage" in request.prompt:
            return ["not an image"]  # type: ignore[list-item]
        if "short" in request.prompt:
            return (await super().generate(request, progress))[:2]
        if "partly-blocked" in request.prompt:  # as diffusers gives a tile its checker flagged
            tiles = await super().generate(request, progress)
            return [tiles[0], blocked_tile(tiles[1].size), *tiles[2:]]
        return await super().generate(request, progress)


@pytest.mark.parametrize(
    ("prompt", "code"),
    [
        ("raise", "FAILED_TO_PROCESS_YOUR_COMMAND"),
        ("refuse", "IMAGE_BLOCKED"),
        ("hang", "BOT_TOOK_TOO_LONG_TO_PROCESS_YOUR_COMMAND"),
        ("hang-thread", "BOT_TOOK_TOO_LONG_TO_PROCESS_YOUR_COMMAND"),
        ("garbage", "FAILED_TO_PROCESS_YOUR_COMMAND"),
        ("short", "FAILED_TO_PROCESS_YOUR_COMMAND"),
    ],
)
async def test_fault_becomes_a_result_code_and_the_worker_continues(
    make_client: ClientFactory, prompt: str, code: str, caplog: Any
) -> None:
    client = await make_client(engine=FaultyEngine(), job_timeout=0.5)
    bad = await submit(client, prompt)
    good = await submit(client, "a calm lake")
    failed = await wait_done(client, bad["messageId"])
    assert failed["status"] == "failed"
    assert failed["content"] == code
    assert failed["error"]  # a sentence
    assert "Traceback" not in failed["error"]
    assert failed["buttons"] == []
    assert failed["imageUrl"] is None
    done = await wait_done(client, good["messageId"])
    assert done["status"] == "done"


async def test_engine_exceptions_are_logged_with_the_job_id(
    make_client: ClientFactory, caplog: Any
) -> None:
    client = await make_client(engine=FaultyEngine())
    bad = await submit(client, "raise")
    await wait_done(client, bad["messageId"])
    assert any(bad["messageId"] in r.getMessage() and r.exc_info for r in caplog.records)


async def test_a_tile_the_safety_checker_withheld_has_no_buttons(
    make_client: ClientFactory,
) -> None:
    client = await make_client(engine=FaultyEngine())
    grid = await wait_done(client, (await submit(client, "partly-blocked"))["messageId"])

    assert grid["status"] == "done"
    assert grid["blocked"] == [2]
    assert grid["buttons"] == ["U1", "U3", "U4", "🔄", "V1", "V3", "V4"]
    withheld = await fetch_image(client, grid["imageUrls"][1])
    assert withheld.convert("L").getextrema()[1] > 100  # says so in light text, not a black square
    pressed = await client.post(
        "/v2/button", json={"buttonMessageId": grid["buttonMessageId"], "button": "U2"}
    )
    assert pressed.status == 400
    assert (await pressed.json())["code"] == "BUTTON_NOT_FOUND"
