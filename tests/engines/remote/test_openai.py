"""The OpenAI Images engine against a stub API: bodies, sizes, edits, moderation and failures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from PIL import Image

from imagine.codes import ResultCode
from imagine.engines import create_engine
from imagine.engines.base import EngineCancelled, EngineError, EngineUnavailable
from imagine.engines.openai_images import GPT_IMAGE, SPECS, OpenAIEngine, nearest_size
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
from tests.engines.remote.openai_stub import (
    IMAGE_MODERATION,
    MODERATION,
    NO_QUOTA,
    OpenAIStub,
    form_image,
)
from tests.engines.remote.stubserver import channels, seed_colour

GENERATIONS, EDITS = "/v1/images/generations", "/v1/images/edits"


def engine_for(server: TestServer, **kwargs: Any) -> OpenAIEngine:
    options: dict[str, Any] = {
        "base_url": str(server.make_url("/v1")),
        "retry": FAST_RETRY,
        "timeouts": FAST_TIMEOUTS,
        "poll_interval": 0.02,
    }
    return OpenAIEngine(kwargs.pop("api_key", "sk-test"), **(options | kwargs))


@pytest.fixture
async def stub_and_engine(
    serve: StartStub[OpenAIStub],
) -> AsyncIterator[tuple[OpenAIStub, OpenAIEngine]]:
    stub = OpenAIStub()
    engine = engine_for(await serve(stub))
    await engine.start()
    yield stub, engine
    await engine.close()


async def test_generations_ask_for_four_at_the_nearest_size(
    stub_and_engine: tuple[OpenAIStub, OpenAIEngine],
) -> None:
    stub, engine = stub_and_engine
    progress = ProgressLog()
    tiles = await engine.generate(txt2img(), progress)

    [body] = stub.bodies[GENERATIONS]
    assert body == {
        "model": "gpt-image-1",
        "prompt": "a red fox in snow\nAvoid: blurry",
        "size": "1536x1024",
        "n": 4,
    }
    assert stub.headers[GENERATIONS][0]["Authorization"] == "Bearer sk-test"
    assert [t.size for t in tiles] == [(64, 48)] * 4
    assert [t.getpixel((32, 24)) for t in tiles] == [seed_colour(s) for s in (1, 2, 3, 4)]
    assert progress.fractions[0] == 0.0
    assert progress.fractions[-1] == 1.0
    assert not engine.capabilities.seeds
    assert "OpenAI does not support seeds: --seed is ignored." in engine.capabilities.notes


def test_the_nearest_size_follows_the_aspect() -> None:
    assert nearest_size(GPT_IMAGE.sizes, 832, 1216) == (1024, 1536)
    assert nearest_size(GPT_IMAGE.sizes, 1024, 1024) == (1024, 1024)
    assert nearest_size(GPT_IMAGE.sizes, 1920, 1080) == (1536, 1024)
    assert nearest_size(SPECS["dall-e-2"].sizes, 600, 600) == (512, 512)


async def test_dall_e_3_makes_one_image_per_call_and_asks_for_base64(
    serve: StartStub[OpenAIStub],
) -> None:
    stub = OpenAIStub()
    engine = engine_for(await serve(stub), model="dall-e-3")
    tiles = await engine.generate(txt2img(width=96, height=48), ProgressLog())
    await engine.close()

    bodies = stub.bodies[GENERATIONS]
    assert [(b["n"], b["size"], b["response_format"]) for b in bodies] == [
        (1, "1792x1024", "b64_json")
    ] * 4
    assert [t.size for t in tiles] == [(96, 48)] * 4
    assert not engine.capabilities.img2img


async def test_img2img_is_an_edit_with_the_init_image(
    stub_and_engine: tuple[OpenAIStub, OpenAIEngine],
) -> None:
    stub, engine = stub_and_engine
    tiles = await engine.generate(txt2img(init_image=init_image()), ProgressLog())

    [form] = stub.bodies[EDITS]
    assert (form["model"], form["n"], form["size"]) == ("gpt-image-1", "4", "1536x1024")
    assert form["prompt"].startswith("a red fox in snow")
    assert form_image(form["image"]).convert("RGB").tobytes() == init_image().tobytes()
    assert "mask" not in form
    assert GENERATIONS not in stub.hits
    assert [t.size for t in tiles] == [(64, 48)] * 4


async def test_an_image_only_prompt_still_tells_the_edit_what_to_do(
    stub_and_engine: tuple[OpenAIStub, OpenAIEngine],
) -> None:
    stub, engine = stub_and_engine  # a /blend has images and no words; OpenAI wants a prompt
    request = txt2img(prompt="", negative_prompt="", init_image=init_image())
    tiles = await engine.generate(request, ProgressLog())

    [form] = stub.bodies[EDITS]
    assert "blend" in form["prompt"]
    assert len(tiles) == 4


async def test_outpaint_sends_a_mask_transparent_where_to_paint(
    stub_and_engine: tuple[OpenAIStub, OpenAIEngine],
) -> None:
    stub, engine = stub_and_engine
    await engine.generate(txt2img(init_image=init_image(), mask=outpaint_mask()), ProgressLog())

    [form] = stub.bodies[EDITS]
    mask = form_image(form["mask"]).convert("RGBA")
    assert mask.size == form_image(form["image"]).size
    assert channels(mask, 60, 10)[3] == 0
    assert channels(mask, 10, 10)[3] == 255


@pytest.mark.parametrize(
    ("edit", "body", "code"),
    [
        (False, MODERATION, ResultCode.BANNED_PROMPT),
        (False, IMAGE_MODERATION, ResultCode.BANNED_PROMPT),
        (True, MODERATION, ResultCode.BANNED_PROMPT),
        (True, IMAGE_MODERATION, ResultCode.IMAGE_BLOCKED),
    ],
)
async def test_moderation_refusals_blame_the_prompt_or_the_image(
    stub_and_engine: tuple[OpenAIStub, OpenAIEngine],
    edit: bool,
    body: dict[str, Any],
    code: ResultCode,
) -> None:
    stub, engine = stub_and_engine
    stub.fail_next(EDITS if edit else GENERATIONS, 400, body)
    request = txt2img(init_image=init_image()) if edit else txt2img()
    with pytest.raises(EngineError) as caught:
        await engine.generate(request, ProgressLog())
    assert caught.value.code is code
    assert "safety system" in caught.value.message
    assert stub.hits[EDITS if edit else GENERATIONS] == 1


async def test_content_policy_violation_is_a_banned_prompt(
    stub_and_engine: tuple[OpenAIStub, OpenAIEngine],
) -> None:
    stub, engine = stub_and_engine
    error = {"message": "Your request was rejected as a result of our safety system."}
    stub.fail_next(GENERATIONS, 400, {"error": error | {"code": "content_policy_violation"}})
    with pytest.raises(EngineError) as caught:
        await engine.generate(txt2img(), ProgressLog())
    assert caught.value.code is ResultCode.BANNED_PROMPT


async def test_a_wrong_key_names_openai_api_key(serve: StartStub[OpenAIStub]) -> None:
    engine = engine_for(await serve(OpenAIStub()), api_key="sk-wrong")
    with pytest.raises(EngineError) as caught:
        await engine.generate(txt2img(), ProgressLog())
    await engine.close()
    assert caught.value.code is ResultCode.FAILED_TO_REQUEST
    assert "OPENAI_API_KEY" in caught.value.message
    assert "Incorrect API key" in caught.value.message


async def test_no_quota_points_at_billing(
    stub_and_engine: tuple[OpenAIStub, OpenAIEngine],
) -> None:
    stub, engine = stub_and_engine
    stub.fail_next(GENERATIONS, 429, NO_QUOTA)
    with pytest.raises(EngineError) as caught:
        await engine.generate(txt2img(), ProgressLog())
    assert caught.value.code is ResultCode.FAILED_TO_REQUEST
    assert "billing" in caught.value.message


async def test_server_errors_are_retried(stub_and_engine: tuple[OpenAIStub, OpenAIEngine]) -> None:
    stub, engine = stub_and_engine
    error = {"error": {"message": "overloaded", "code": None}}
    stub.fail_next(GENERATIONS, 503, error, times=2)  # a 500 is not resent: test_submissions
    tiles = await engine.generate(txt2img(), ProgressLog())
    assert stub.hits[GENERATIONS] == 3
    assert len(tiles) == 4


async def test_edits_are_resent_whole_when_retried(
    stub_and_engine: tuple[OpenAIStub, OpenAIEngine],
) -> None:
    stub, engine = stub_and_engine
    stub.fail_next(EDITS, 503)
    await engine.generate(txt2img(init_image=init_image()), ProgressLog())
    first, second = stub.bodies[EDITS]
    assert first == second


async def test_a_hanging_api_times_out(stub_and_engine: tuple[OpenAIStub, OpenAIEngine]) -> None:
    stub, engine = stub_and_engine
    stub.hang(GENERATIONS)
    with pytest.raises(EngineError) as caught:
        await engine.generate(txt2img(), ProgressLog())
    assert caught.value.code is ResultCode.BOT_TOOK_TOO_LONG_TO_PROCESS_YOUR_COMMAND


async def test_a_cancel_is_noticed_while_waiting(
    stub_and_engine: tuple[OpenAIStub, OpenAIEngine],
) -> None:
    stub, engine = stub_and_engine
    stub.hang(GENERATIONS)
    calls = ProgressLog(cancel_when=lambda _: len(calls.fractions) >= 3)
    with pytest.raises(EngineCancelled):
        await engine.generate(txt2img(), calls)


async def test_malformed_answers_are_processing_failures(
    stub_and_engine: tuple[OpenAIStub, OpenAIEngine],
) -> None:
    stub, engine = stub_and_engine
    stub.malformed(GENERATIONS)
    with pytest.raises(EngineError) as caught:
        await engine.generate(txt2img(), ProgressLog())
    assert caught.value.code is ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND

    stub.broken.clear()
    stub.fail_next(GENERATIONS, 200, {"created": 1, "data": [{"b64_json": "bm90IGFuIGltYWdl"}]})
    with pytest.raises(EngineError) as caught:
        await engine.generate(txt2img(seeds=(1,)), ProgressLog())
    assert caught.value.code is ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND
    assert "cannot be read" in caught.value.message


def test_from_settings_reads_its_variables(settings: Settings) -> None:
    with pytest.raises(EngineUnavailable, match="OPENAI_API_KEY"):
        create_engine(settings.with_(engine="openai"))
    engine = create_engine(settings.with_(engine="openai", environ={"OPENAI_API_KEY": "sk-x"}))
    assert isinstance(engine, OpenAIEngine)
    assert engine.service.base_url == "https://api.openai.com/v1"
    assert engine.model == "gpt-image-1"
    env = {
        "OPENAI_API_KEY": "sk-x",
        "OPENAI_BASE_URL": "http://127.0.0.1:9999/v1/",
        "OPENAI_IMAGE_MODEL": "dall-e-2",
    }
    engine = create_engine(settings.with_(engine="openai", environ=env))
    assert isinstance(engine, OpenAIEngine)
    assert (engine.service.base_url, engine.model) == ("http://127.0.0.1:9999/v1", "dall-e-2")


async def test_describe_asks_a_vision_model_and_reads_four_prompts(
    stub_and_engine: tuple[OpenAIStub, OpenAIEngine],
) -> None:
    stub, engine = stub_and_engine
    assert engine.capabilities.describe
    prompts = await engine.describe(Image.new("RGB", (40, 30), "red"), 4, ProgressLog())
    assert prompts == [
        "a red kite over a beach, watercolour",
        "a kite, bright afternoon light",
        "red kite, sand, sea, soft focus",
        "a child's kite in the wind, photo",
    ]
    (sent,) = stub.bodies["/v1/chat/completions"]
    assert sent["model"] == "gpt-4o-mini"
    image_part = sent["messages"][0]["content"][1]
    assert image_part["image_url"]["url"].startswith("data:image/png;base64,")


async def test_describe_is_off_without_a_vision_model(serve: StartStub[OpenAIStub]) -> None:
    engine = engine_for(await serve(OpenAIStub()), vision_model="")
    assert not engine.capabilities.describe
    await engine.close()
