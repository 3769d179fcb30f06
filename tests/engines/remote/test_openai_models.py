"""OpenAI: a job's buttons, and what it may do, follow its own model (its --v)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from imagine import actions
from imagine.app import create_app
from imagine.codes import ResultCode
from imagine.engines.base import EngineError
from imagine.engines.openai_images import OpenAIEngine
from imagine.jobs import Job
from imagine.prompt import parse
from imagine.settings import Settings
from tests.engines.remote.conftest import (
    FAST_RETRY,
    FAST_TIMEOUTS,
    ProgressLog,
    StartStub,
    init_image,
    outpaint_mask,
    txt2img,
)
from tests.engines.remote.openai_stub import OpenAIStub


def engine_for(server: TestServer) -> OpenAIEngine:
    url = str(server.make_url("/v1"))
    return OpenAIEngine("sk-test", base_url=url, retry=FAST_RETRY, timeouts=FAST_TIMEOUTS)


@pytest.fixture
async def stub_and_engine(
    serve: StartStub[OpenAIStub],
) -> AsyncIterator[tuple[OpenAIStub, OpenAIEngine]]:
    stub = OpenAIStub()
    engine = engine_for(await serve(stub))  # gpt-image-1, which can edit
    yield stub, engine
    await engine.close()


MODELS = {"5": "dall-e-2", "6": "dall-e-3", "7": "gpt-image-1"}


@pytest.mark.parametrize(
    ("configured", "version", "edits"),
    [
        ("gpt-image-1", None, True),
        ("gpt-image-1", "6", False),  # dall-e-3 has no edits
        ("gpt-image-1", "5", False),  # dall-e-2's need a square image with a transparent hole
        ("dall-e-3", None, False),
        ("dall-e-3", "7", True),
    ],
)
def test_buttons_follow_each_jobs_model(configured: str, version: str | None, edits: bool) -> None:
    engine = OpenAIEngine("sk-x", model=configured)
    context = actions.PlanContext(engine.capabilities, MODELS, None)
    [prompt] = parse("a red fox" + (f" --v {version}" if version else ""))
    job = Job("j", "b", "imagine", "imagine", "owner", "a red fox", prompt.to_dict())

    capabilities = context.capabilities_for(job)
    grid = actions.buttons_for("imagine", capabilities, (1024, 1024), "imagine")
    tile = actions.buttons_for("upscale", capabilities, (1024, 1536), "U1")

    assert [b for b in grid if not b.startswith("V")] == ["U1", "U2", "U3", "U4", "🔄"]
    assert ("V1" in grid) is edits
    editing = {"Vary (Strong)", "Vary (Subtle)", "Zoom Out 2x", "Zoom Out 1.5x", "⬅️", "Make Square"}
    assert editing & set(tile) == (editing if edits else set())
    assert "Upscale (Subtle)" in tile


async def test_an_edit_on_a_model_that_cannot_edit_is_refused_before_any_call(
    stub_and_engine: tuple[OpenAIStub, OpenAIEngine],
) -> None:
    stub, engine = stub_and_engine  # gpt-image-1 configured; the job asked for dall-e-3
    request = txt2img(model="dall-e-3", init_image=init_image(), mask=outpaint_mask())
    with pytest.raises(EngineError) as caught:
        await engine.generate(request, ProgressLog())
    assert caught.value.code is ResultCode.INVALID_PARAMETER
    assert "dall-e-3 cannot edit images" in caught.value.message
    assert "--v" in caught.value.message
    assert not stub.hits  # nothing was sent, nothing billed


async def test_through_the_service_each_jobs_buttons_follow_its_model(
    serve: StartStub[OpenAIStub], aiohttp_client: Any, settings: Settings
) -> None:
    """Needs the runner to ask PlanContext.capabilities_for(job) (see actions.py)."""
    engine = engine_for(await serve(OpenAIStub()))  # gpt-image-1 can edit; dall-e-3 cannot
    app = create_app(settings.with_(models={"6": "dall-e-3"}), engine=engine)
    client = await aiohttp_client(app)

    async def finished(answer: Any) -> dict[str, Any]:
        data = await answer.json()
        assert answer.status == 200, data
        async with asyncio.timeout(20):
            while (message := await client.get(f"/v2/message/{data['messageId']}")).status:
                polled = await message.json()
                if polled["progress"] == 100:
                    result: dict[str, Any] = polled["response"]
                    return result
                await asyncio.sleep(0.02)
        raise AssertionError("unreachable")

    own = await finished(await client.post("/v2/imagine", json={"msg": "a red fox"}))
    dalle = await finished(await client.post("/v2/imagine", json={"msg": "a red fox --v 6"}))
    assert "V1" in own["buttons"]
    assert [b for b in dalle["buttons"] if b.startswith("V")] == []
    assert dalle["buttons"][:4] == ["U1", "U2", "U3", "U4"]

    body = {"buttonMessageId": dalle["buttonMessageId"], "button": "U1"}
    tile = await finished(await client.post("/v2/button", json=body))
    assert "Upscale (Subtle)" in tile["buttons"]
    assert not {"Vary (Strong)", "Vary (Subtle)", "Zoom Out 2x", "⬅️"} & set(tile["buttons"])
