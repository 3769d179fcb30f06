"""The AUTOMATIC1111 engine against a stub WebUI: what it sends, what it returns, how it fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from PIL import Image

from imagine.codes import ResultCode
from imagine.engines import create_engine
from imagine.engines.a1111 import A1111Engine
from imagine.engines.base import EngineCancelled, EngineError, EngineUnavailable
from imagine.settings import Settings
from tests.engines.remote.a1111_stub import A1111Stub
from tests.engines.remote.conftest import (
    FAST_RETRY,
    FAST_TIMEOUTS,
    SEEDS,
    ProgressLog,
    StartStub,
    closed_port_url,
    init_image,
    outpaint_mask,
    txt2img,
)
from tests.engines.remote.stubserver import seed_colour, unb64


def engine_for(server: TestServer, **kwargs: Any) -> A1111Engine:
    options: dict[str, Any] = {
        "retry": FAST_RETRY,
        "timeouts": FAST_TIMEOUTS,
        "poll_interval": 0.03,
    }
    return A1111Engine(str(server.make_url("")), **(options | kwargs))


@pytest.fixture
async def stub_and_engine(
    serve: StartStub[A1111Stub],
) -> AsyncIterator[tuple[A1111Stub, A1111Engine]]:
    stub = A1111Stub()
    engine = engine_for(await serve(stub), model="sdxl.safetensors")
    await engine.start()
    yield stub, engine
    await engine.close()


async def test_txt2img_sends_one_batch_and_returns_four_tiles_in_seed_order(
    stub_and_engine: tuple[A1111Stub, A1111Engine],
) -> None:
    stub, engine = stub_and_engine
    progress = ProgressLog()
    tiles = await engine.generate(txt2img(steps=12, guidance=5.5), progress)

    [body] = stub.bodies["/sdapi/v1/txt2img"]
    assert body["prompt"] == "a red fox in snow"
    assert body["negative_prompt"] == "blurry"
    assert (body["seed"], body["batch_size"], body["n_iter"]) == (40, 4, 1)
    assert (body["width"], body["height"], body["steps"], body["cfg_scale"]) == (64, 48, 12, 5.5)
    assert body["override_settings"] == {"sd_model_checkpoint": "sdxl.safetensors"}
    assert [t.size for t in tiles] == [(64, 48)] * 4
    assert [t.getpixel((0, 0)) for t in tiles] == [seed_colour(s) for s in SEEDS]
    assert stub.hits["/sdapi/v1/progress"] >= 2  # start() once, then polls during the render
    assert 0.5 in progress.fractions
    assert progress.fractions[-1] == 1.0
    assert progress.fractions == sorted(progress.fractions)
    assert progress.previews
    assert progress.previews[0].size == (8, 8)


async def test_img2img_sends_the_init_image_and_strength(
    stub_and_engine: tuple[A1111Stub, A1111Engine],
) -> None:
    stub, engine = stub_and_engine
    tiles = await engine.generate(txt2img(init_image=init_image(), strength=0.35), ProgressLog())

    [body] = stub.bodies["/sdapi/v1/img2img"]
    assert unb64(body["init_images"][0]).convert("RGB").tobytes() == init_image().tobytes()
    assert body["denoising_strength"] == 0.35
    assert (body["steps"], body["cfg_scale"]) == (20, 7.0)  # not the API's default of 50 steps
    assert "mask" not in body
    assert body["batch_size"] == 4
    assert "/sdapi/v1/txt2img" not in stub.hits
    assert [t.size for t in tiles] == [(64, 48)] * 4


async def test_outpaint_sends_the_mask_white_where_to_paint(
    stub_and_engine: tuple[A1111Stub, A1111Engine],
) -> None:
    stub, engine = stub_and_engine
    request = txt2img(init_image=init_image(), mask=outpaint_mask(), strength=1.0)
    await engine.generate(request, ProgressLog())

    [body] = stub.bodies["/sdapi/v1/img2img"]
    mask = unb64(body["mask"]).convert("L")
    assert mask.getpixel((60, 10)) == 255
    assert mask.getpixel((10, 10)) == 0
    assert (body["inpainting_fill"], body["inpaint_full_res"], body["inpainting_mask_invert"]) == (
        1,
        False,
        0,
    )
    # the border grows from the pre-filled picture, not from noise (1.0 would ignore it)
    assert body["denoising_strength"] == 0.85


async def test_seeds_that_are_not_consecutive_become_one_batch_per_run(
    stub_and_engine: tuple[A1111Stub, A1111Engine],
) -> None:
    stub, engine = stub_and_engine
    tiles = await engine.generate(txt2img(seeds=(7, 8, 100, 101)), ProgressLog())

    bodies = stub.bodies["/sdapi/v1/txt2img"]
    assert [(b["seed"], b["batch_size"]) for b in bodies] == [(7, 2), (100, 2)]
    assert [t.getpixel((0, 0)) for t in tiles] == [seed_colour(s) for s in (7, 8, 100, 101)]


async def test_a_grid_before_the_tiles_is_skipped(
    stub_and_engine: tuple[A1111Stub, A1111Engine],
) -> None:
    stub, engine = stub_and_engine
    stub.return_grid = True
    tiles = await engine.generate(txt2img(), ProgressLog())
    assert [t.getpixel((0, 0)) for t in tiles] == [seed_colour(s) for s in SEEDS]


async def test_upscale_uses_the_configured_upscaler(
    stub_and_engine: tuple[A1111Stub, A1111Engine],
) -> None:
    stub, engine = stub_and_engine
    result = await engine.upscale(init_image(), 2, ProgressLog())

    [body] = stub.bodies["/sdapi/v1/extra-single-image"]
    assert (body["upscaler_1"], body["upscaling_resize"], body["resize_mode"]) == (
        "R-ESRGAN 4x+",
        2,
        0,
    )
    assert result.size == (128, 96)
    assert engine.capabilities.upscale


async def test_basic_auth_is_sent_and_a_wrong_password_names_a1111_auth(
    serve: StartStub[A1111Stub],
) -> None:
    stub = A1111Stub(credentials="alice:secret")
    server = await serve(stub)
    good = engine_for(server, auth=("alice", "secret"))
    assert len(await good.generate(txt2img(), ProgressLog())) == 4
    await good.close()

    bad = engine_for(server, auth=("alice", "wrong"))
    with pytest.raises(EngineError) as caught:
        await bad.generate(txt2img(), ProgressLog())
    await bad.close()
    assert caught.value.code is ResultCode.FAILED_TO_REQUEST
    assert "A1111_AUTH" in caught.value.message
    assert "401" in caught.value.message


async def test_server_errors_are_retried_then_succeed(
    stub_and_engine: tuple[A1111Stub, A1111Engine],
) -> None:
    stub, engine = stub_and_engine
    stub.fail_next("/sdapi/v1/txt2img", 503, times=2)  # a 502 is not resent: test_submissions
    tiles = await engine.generate(txt2img(), ProgressLog())
    assert stub.hits["/sdapi/v1/txt2img"] == 3
    assert len(tiles) == 4


async def test_server_errors_that_persist_fail_after_the_bounded_tries(
    stub_and_engine: tuple[A1111Stub, A1111Engine],
) -> None:
    stub, engine = stub_and_engine
    stub.fail_next("/sdapi/v1/txt2img", 503, {"detail": "CUDA out of memory"}, times=5)
    with pytest.raises(EngineError) as caught:
        await engine.generate(txt2img(), ProgressLog())
    assert stub.hits["/sdapi/v1/txt2img"] == 3
    assert caught.value.code is ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND
    assert "CUDA out of memory" in caught.value.message


async def test_a_hanging_server_times_out(
    stub_and_engine: tuple[A1111Stub, A1111Engine],
) -> None:
    stub, engine = stub_and_engine
    stub.hang("/sdapi/v1/txt2img")
    with pytest.raises(EngineError) as caught:
        await engine.generate(txt2img(), ProgressLog())
    assert caught.value.code is ResultCode.BOT_TOOK_TOO_LONG_TO_PROCESS_YOUR_COMMAND
    assert stub.hits["/sdapi/v1/txt2img"] == 1  # a timeout is not retried
    assert stub.hits["/sdapi/v1/interrupt"] == 1  # and the WebUI is told to stop


async def test_a_malformed_answer_is_a_processing_failure(
    stub_and_engine: tuple[A1111Stub, A1111Engine],
) -> None:
    stub, engine = stub_and_engine
    stub.malformed("/sdapi/v1/txt2img")
    with pytest.raises(EngineError) as caught:
        await engine.generate(txt2img(), ProgressLog())
    assert caught.value.code is ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND
    assert "AUTOMATIC1111" in caught.value.message


async def test_cancel_from_the_progress_callback_interrupts_the_webui(
    stub_and_engine: tuple[A1111Stub, A1111Engine],
) -> None:
    stub, engine = stub_and_engine
    stub.render_seconds = 5.0
    with pytest.raises(EngineCancelled):
        await engine.generate(txt2img(), ProgressLog(cancel_when=lambda f: f >= 0.5))
    assert stub.hits["/sdapi/v1/interrupt"] == 1


async def test_cancelling_the_task_interrupts_the_webui(
    stub_and_engine: tuple[A1111Stub, A1111Engine],
) -> None:
    stub, engine = stub_and_engine
    stub.render_seconds = 5.0
    task = asyncio.create_task(engine.generate(txt2img(), ProgressLog()))
    while not stub.running:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stub.hits["/sdapi/v1/interrupt"] == 1


async def test_start_explains_an_unreachable_server() -> None:
    engine = A1111Engine(closed_port_url(), retry=FAST_RETRY, timeouts=FAST_TIMEOUTS)
    with pytest.raises(EngineUnavailable, match="A1111_URL"):
        await engine.start()
    await engine.close()


def test_from_settings_reads_its_variables(settings: Settings) -> None:
    with pytest.raises(EngineUnavailable, match="Set A1111_URL"):
        create_engine(settings.with_(engine="a1111"))
    env = {"A1111_URL": "http://192.168.1.20:7860/", "A1111_AUTH": "bob:pw"}
    engine = create_engine(settings.with_(engine="a1111", environ=env))
    assert isinstance(engine, A1111Engine)
    assert engine.service.base_url == "http://192.168.1.20:7860"  # a LAN box is fine
    assert engine.service.headers["Authorization"] == "Basic Ym9iOnB3"  # bob:pw
    with pytest.raises(EngineUnavailable, match="user:password"):
        create_engine(settings.with_(engine="a1111", environ=env | {"A1111_AUTH": "bob"}))


async def test_describe_reads_the_clip_caption_and_the_tags(
    stub_and_engine: tuple[A1111Stub, A1111Engine],
) -> None:
    stub, engine = stub_and_engine
    assert engine.capabilities.describe
    red = Image.new("RGB", (64, 48), (220, 20, 20))
    prompts = await engine.describe(red, 4, ProgressLog())
    assert len(prompts) == 4
    assert len(set(prompts)) == 4
    assert all(p.startswith("a red square on a table") for p in prompts)
    assert any("still life" in p for p in prompts)  # DeepDanbooru's tags, underscores read
    sent = stub.bodies["/sdapi/v1/interrogate"]
    assert [b["model"] for b in sent] == ["clip", "deepdanbooru"]
    assert unb64(sent[0]["image"]).size == (64, 48)


async def test_describe_without_deepdanbooru_still_gives_four_prompts(
    stub_and_engine: tuple[A1111Stub, A1111Engine],
) -> None:
    stub, engine = stub_and_engine
    stub.booru = False
    prompts = await engine.describe(Image.new("RGB", (32, 32), "navy"), 4, ProgressLog())
    assert len(set(prompts)) == 4
    assert all("blue square" in p for p in prompts)
