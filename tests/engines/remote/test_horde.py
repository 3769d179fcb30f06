"""The AI Horde engine against a stub Horde: submit, check, status, delete, and every failure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from PIL import Image

from imagine.codes import ResultCode
from imagine.engines import create_engine
from imagine.engines.base import EngineCancelled, EngineError
from imagine.engines.horde import ANONYMOUS_KEY, CLIENT_AGENT, DEFAULT_URL, HordeEngine
from imagine.prompt.mapping import plan_generation, stylize_factor
from imagine.prompt.parse import parse
from imagine.settings import Settings
from tests.engines.remote.conftest import (
    FAST_RETRY,
    FAST_TIMEOUTS,
    SEEDS,
    ProgressLog,
    StartStub,
    init_image,
    outpaint_mask,
    txt2img,
)
from tests.engines.remote.horde_stub import HordeStub
from tests.engines.remote.stubserver import channels, seed_colour, unb64

SUBMIT = "/api/v2/generate/async"


def engine_for(server: TestServer, **kwargs: Any) -> HordeEngine:
    options: dict[str, Any] = {
        "retry": FAST_RETRY,
        "timeouts": FAST_TIMEOUTS,
        "poll_interval": 0.02,
    }
    return HordeEngine(str(server.make_url("/api")), **(options | kwargs))


@pytest.fixture
async def stub_and_engine(
    serve: StartStub[HordeStub],
) -> AsyncIterator[tuple[HordeStub, HordeEngine]]:
    stub = HordeStub()
    engine = engine_for(await serve(stub), models=("AlbedoBase XL (SDXL)",))
    await engine.start()
    yield stub, engine
    await engine.close()


def checks(stub: HordeStub) -> int:
    return sum(n for path, n in stub.hits.items() if "/check/" in path)


async def test_txt2img_submits_one_request_and_collects_four_tiles(
    stub_and_engine: tuple[HordeStub, HordeEngine],
) -> None:
    stub, engine = stub_and_engine
    progress = ProgressLog()
    tiles = await engine.generate(txt2img(steps=25, guidance=6.0), progress)

    [body] = stub.bodies[SUBMIT]
    assert body["prompt"] == "a red fox in snow ### blurry"
    assert body["params"] == {
        "width": 64,
        "height": 48,
        "seed": "40",
        "n": 4,
        "seed_variation": 1,
        "steps": 25,
        "cfg_scale": 6.0,
    }
    assert body["models"] == ["AlbedoBase XL (SDXL)"]
    assert (body["nsfw"], body["censor_nsfw"], body["r2"]) == (False, True, True)
    [headers] = stub.headers[SUBMIT]
    assert (headers["apikey"], headers["Client-Agent"]) == (ANONYMOUS_KEY, CLIENT_AGENT)
    assert checks(stub) == 3
    assert sum(n for path, n in stub.hits.items() if "/status/" in path) == 1
    downloads = [h for path, hs in stub.headers.items() if path.startswith("/r2/") for h in hs]
    assert len(downloads) == 4
    assert all("apikey" not in h for h in downloads)  # the key never leaves for the R2 host
    assert [t.size for t in tiles] == [(64, 48)] * 4
    assert [t.getpixel((0, 0)) for t in tiles] == [seed_colour(s) for s in SEEDS]
    assert progress.fractions == sorted(progress.fractions)
    assert any(0 < f < 1 for f in progress.fractions)
    assert progress.fractions[-1] == 1.0


async def test_inline_base64_images_are_decoded(
    stub_and_engine: tuple[HordeStub, HordeEngine],
) -> None:
    stub, engine = stub_and_engine
    stub.inline = True
    tiles = await engine.generate(txt2img(), ProgressLog())
    assert [t.getpixel((0, 0)) for t in tiles] == [seed_colour(s) for s in SEEDS]
    assert not any(path.startswith("/r2/") for path in stub.hits)


async def test_img2img_sends_a_webp_source_and_strength(
    stub_and_engine: tuple[HordeStub, HordeEngine],
) -> None:
    stub, engine = stub_and_engine
    await engine.generate(txt2img(init_image=init_image(), strength=0.45), ProgressLog())

    [body] = stub.bodies[SUBMIT]
    source = unb64(body["source_image"])
    assert source.format == "WEBP"
    assert source.convert("RGB").tobytes() == init_image().tobytes()
    assert body["source_processing"] == "img2img"
    assert body["params"]["denoising_strength"] == 0.45


async def test_outpaint_marks_the_area_to_paint_as_transparent(
    stub_and_engine: tuple[HordeStub, HordeEngine],
) -> None:
    stub, engine = stub_and_engine
    await engine.generate(txt2img(init_image=init_image(), mask=outpaint_mask()), ProgressLog())

    [body] = stub.bodies[SUBMIT]
    source = unb64(body["source_image"]).convert("RGBA")
    assert body["source_processing"] == "outpainting"
    assert channels(source, 60, 10)[3] == 0
    assert source.getpixel((10, 10)) == (10, 200, 10, 255)


async def test_non_consecutive_seeds_become_separate_requests(
    stub_and_engine: tuple[HordeStub, HordeEngine],
) -> None:
    stub, engine = stub_and_engine
    tiles = await engine.generate(txt2img(seeds=(9, 50, 51, 52)), ProgressLog())
    assert [(b["params"]["seed"], b["params"]["n"]) for b in stub.bodies[SUBMIT]] == [
        ("9", 1),
        ("50", 3),
    ]
    assert "seed_variation" not in stub.bodies[SUBMIT][0]["params"]
    assert [t.getpixel((0, 0)) for t in tiles] == [seed_colour(s) for s in (9, 50, 51, 52)]


@pytest.mark.parametrize(
    ("mode", "words"),
    [("faulted", "faulted"), ("impossible", "HORDE_MODELS")],
)
async def test_faulted_and_impossible_requests_are_explained_and_deleted(
    stub_and_engine: tuple[HordeStub, HordeEngine], mode: str, words: str
) -> None:
    stub, engine = stub_and_engine
    stub.mode = mode
    with pytest.raises(EngineError) as caught:
        await engine.generate(txt2img(), ProgressLog())
    assert caught.value.code is ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND
    assert words in caught.value.message
    assert stub.deleted == list(stub.requests)


async def test_a_request_that_never_finishes_times_out_and_is_deleted(
    stub_and_engine: tuple[HordeStub, HordeEngine],
) -> None:
    stub, engine = stub_and_engine
    stub.mode = "never"
    with pytest.raises(EngineError) as caught:
        await engine.generate(txt2img(), ProgressLog())
    assert caught.value.code is ResultCode.BOT_TOOK_TOO_LONG_TO_PROCESS_YOUR_COMMAND
    assert stub.deleted == list(stub.requests)


async def test_cancel_deletes_the_request(stub_and_engine: tuple[HordeStub, HordeEngine]) -> None:
    stub, engine = stub_and_engine
    stub.mode = "never"
    with pytest.raises(EngineCancelled):
        await engine.generate(txt2img(), ProgressLog(cancel_when=lambda f: f > 0))
    assert stub.deleted == list(stub.requests)


async def test_cancelling_the_task_deletes_the_request(
    stub_and_engine: tuple[HordeStub, HordeEngine],
) -> None:
    stub, engine = stub_and_engine
    stub.mode = "never"
    task = asyncio.create_task(engine.generate(txt2img(), ProgressLog()))
    while checks(stub) < 2:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stub.deleted == list(stub.requests)


@pytest.mark.parametrize(
    ("status", "body", "code", "words"),
    [
        (
            400,
            {
                "message": "This prompt appears to violate our terms of service.",
                "rc": "CorruptPrompt",
            },
            ResultCode.BANNED_PROMPT,
            "terms of service",
        ),
        (
            403,
            {"message": "This request requires 30 kudos to fulfil.", "rc": "KudosUpfront"},
            ResultCode.FAILED_TO_REQUEST,
            "HORDE_API_KEY",
        ),
        (
            401,
            {"message": "No user matching sent API Key.", "rc": "InvalidAPIKey"},
            ResultCode.FAILED_TO_REQUEST,
            "HORDE_API_KEY",
        ),
        (
            429,
            {"message": "Parallel requests exceeded user limit.", "rc": "TooManyPrompts"},
            ResultCode.FAILED_TO_REQUEST,
            "limiting",
        ),
    ],
)
async def test_refusals_at_submit_become_result_codes(
    stub_and_engine: tuple[HordeStub, HordeEngine],
    status: int,
    body: dict[str, str],
    code: ResultCode,
    words: str,
) -> None:
    stub, engine = stub_and_engine
    stub.fail_next(SUBMIT, status, body)
    with pytest.raises(EngineError) as caught:
        await engine.generate(txt2img(), ProgressLog())
    assert caught.value.code is code
    assert words in caught.value.message
    assert stub.hits[SUBMIT] == 1  # a refusal is not retried


async def test_a_wrong_key_is_refused_by_the_horde(serve: StartStub[HordeStub]) -> None:
    stub = HordeStub()
    engine = engine_for(await serve(stub), api_key="not-a-key")
    with pytest.raises(EngineError) as caught:
        await engine.generate(txt2img(), ProgressLog())
    await engine.close()
    assert "HORDE_API_KEY" in caught.value.message
    assert caught.value.code is ResultCode.FAILED_TO_REQUEST


async def test_server_errors_are_retried_at_submit_and_while_checking(
    stub_and_engine: tuple[HordeStub, HordeEngine],
) -> None:
    stub, engine = stub_and_engine
    stub.checks_until_done = 1
    stub.check_failures = 2
    stub.fail_next(SUBMIT, 503)  # a 502 at submit is not resent: test_submissions
    tiles = await engine.generate(txt2img(seeds=(1,)), ProgressLog())
    assert stub.hits[SUBMIT] == 2
    assert checks(stub) == 3
    assert tiles[0].getpixel((0, 0)) == seed_colour(1)


async def test_a_malformed_answer_is_a_processing_failure(
    stub_and_engine: tuple[HordeStub, HordeEngine],
) -> None:
    stub, engine = stub_and_engine
    stub.malformed(SUBMIT)
    with pytest.raises(EngineError) as caught:
        await engine.generate(txt2img(), ProgressLog())
    assert caught.value.code is ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND


async def test_all_images_censored_is_image_blocked(
    stub_and_engine: tuple[HordeStub, HordeEngine],
) -> None:
    stub, engine = stub_and_engine
    stub.mode = "censored"
    with pytest.raises(EngineError) as caught:
        await engine.generate(txt2img(), ProgressLog())
    assert caught.value.code is ResultCode.IMAGE_BLOCKED


async def test_start_makes_no_request(serve: StartStub[HordeStub]) -> None:
    stub = HordeStub()
    engine = engine_for(await serve(stub))
    await engine.start()
    await engine.close()
    assert not stub.hits


def test_from_settings_defaults_to_the_public_horde_and_the_anonymous_key(
    settings: Settings,
) -> None:
    engine = create_engine(settings.with_(engine="horde"))
    assert isinstance(engine, HordeEngine)
    assert engine.service.base_url == DEFAULT_URL
    assert engine.service.headers["apikey"] == ANONYMOUS_KEY
    assert engine.models == ()
    assert engine.capabilities.multiple == 64
    assert not engine.capabilities.upscale
    env = {"HORDE_API_KEY": "k3y", "HORDE_MODELS": "Deliberate, AlbedoBase XL (SDXL)"}
    engine = create_engine(settings.with_(engine="horde", environ=env))
    assert isinstance(engine, HordeEngine)
    assert engine.models == ("Deliberate", "AlbedoBase XL (SDXL)")
    assert engine.service.headers["apikey"] == "k3y"


@pytest.mark.parametrize(("stylize", "cfg"), [(100, None), (10, 5.0 * stylize_factor(10))])
def test_stylize_scales_the_hordes_own_default_guidance(
    settings: Settings, stylize: int, cfg: float | None
) -> None:
    engine = create_engine(settings.with_(engine="horde"))
    [prompt] = parse(f"a fox --s {stylize}")
    request = plan_generation(
        prompt, engine.capabilities, seeds=(1, 2, 3, 4), models={}, default_model=None
    )
    # No --stylize sends no cfg_scale (the Horde uses 5), so --s must scale from that same 5.
    assert request.guidance == (None if cfg is None else pytest.approx(cfg, abs=1e-3))


async def test_describe_interrogates_and_polls_until_done(
    stub_and_engine: tuple[HordeStub, HordeEngine],
) -> None:
    stub, engine = stub_and_engine
    assert engine.capabilities.describe
    prompts = await engine.describe(Image.new("RGB", (48, 32), "teal"), 4, ProgressLog())
    assert len(prompts) == 4
    assert len(set(prompts)) == 4
    assert prompts[0] == "a lighthouse on a cliff"
    assert "a lighthouse on a cliff, sea, dusk, rocks" in prompts
    (sent,) = stub.bodies["/api/v2/interrogate/async"]
    assert [f["name"] for f in sent["forms"]] == ["caption", "interrogation"]
    assert unb64(sent["source_image"]).size == (48, 32)  # base64 WebP, as generations take
    assert stub.hits["/api/v2/interrogate/status/int-1"] >= 2


async def test_a_faulted_interrogation_is_a_sentence(
    stub_and_engine: tuple[HordeStub, HordeEngine],
) -> None:
    stub, engine = stub_and_engine
    stub.interrogation_state = "faulted"
    with pytest.raises(EngineError, match="could not describe the image"):
        await engine.describe(Image.new("RGB", (32, 32), "teal"), 4, ProgressLog())
