"""The ComfyUI engine against a stub ComfyUI: workflows, websocket progress, results, failures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from imagine.codes import ResultCode
from imagine.engines import create_engine
from imagine.engines.base import (
    OUTPAINT_STRENGTH,
    EngineCancelled,
    EngineError,
    EngineUnavailable,
)
from imagine.engines.comfyui import ComfyUIEngine
from imagine.settings import Settings
from tests.engines.remote.comfyui_stub import CHECKPOINTS, ComfyUIStub
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
from tests.engines.remote.stubserver import channels, seed_colour


def engine_for(server: TestServer, **kwargs: Any) -> ComfyUIEngine:
    options: dict[str, Any] = {
        "retry": FAST_RETRY,
        "timeouts": FAST_TIMEOUTS,
        "poll_interval": 0.05,
    }
    return ComfyUIEngine(str(server.make_url("")), **(options | kwargs))


@pytest.fixture
async def stub_and_engine(
    serve: StartStub[ComfyUIStub],
) -> AsyncIterator[tuple[ComfyUIStub, ComfyUIEngine]]:
    stub = ComfyUIStub()
    engine = engine_for(await serve(stub))
    await engine.start()
    yield stub, engine
    await engine.close()


def nodes(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["class_type"]: node["inputs"] for node in workflow.values()}


async def test_txt2img_queues_one_filled_workflow_per_seed(
    stub_and_engine: tuple[ComfyUIStub, ComfyUIEngine],
) -> None:
    stub, quick = stub_and_engine
    # A long poll interval: only websocket events (execution_success) can end each prompt.
    engine = ComfyUIEngine(quick.service.base_url, poll_interval=5.0, checkpoint=CHECKPOINTS[0])
    progress = ProgressLog()
    try:
        request = txt2img(steps=9, guidance=4.0)
        async with asyncio.timeout(2.0):
            tiles = await engine.generate(request, progress)
    finally:
        await engine.close()

    bodies = stub.bodies["/prompt"]
    assert len(bodies) == 4
    assert len({body["client_id"] for body in bodies}) == 1
    for seed, body in zip(SEEDS, bodies, strict=True):
        graph = nodes(body["prompt"])
        assert graph["KSampler"]["seed"] == seed
        assert (graph["KSampler"]["steps"], graph["KSampler"]["cfg"]) == (9, 4.0)
        assert graph["EmptyLatentImage"] == {"width": 64, "height": 48, "batch_size": 1}
        assert graph["CheckpointLoaderSimple"]["ckpt_name"] == CHECKPOINTS[0]
        texts = [n["inputs"]["text"] for n in body["prompt"].values() if "text" in n["inputs"]]
        assert texts == ["a red fox in snow", "blurry"]
        assert "{{" not in json.dumps(body["prompt"])
    assert [t.size for t in tiles] == [(64, 48)] * 4
    assert [t.getpixel((0, 0)) for t in tiles] == [seed_colour(s) for s in SEEDS]
    assert progress.fractions == sorted(progress.fractions)
    assert any(0 < f < 1 for f in progress.fractions)
    assert progress.fractions[-1] == 1.0
    assert progress.previews
    assert progress.previews[0].size == (8, 8)


async def test_img2img_uploads_the_init_image_and_sets_denoise(
    stub_and_engine: tuple[ComfyUIStub, ComfyUIEngine],
) -> None:
    stub, engine = stub_and_engine
    tiles = await engine.generate(txt2img(init_image=init_image(), strength=0.4), ProgressLog())

    [upload] = stub.bodies["/upload/image"]
    assert (upload["type"], upload["overwrite"]) == ("input", "true")
    graph = nodes(stub.bodies["/prompt"][0]["prompt"])
    uploaded = stub.uploads[graph["LoadImage"]["image"]]
    assert uploaded.convert("RGB").tobytes() == init_image().tobytes()
    assert graph["KSampler"]["denoise"] == 0.4
    assert [t.size for t in tiles] == [(64, 48)] * 4


async def test_outpaint_uploads_a_mask_read_from_its_red_channel(
    stub_and_engine: tuple[ComfyUIStub, ComfyUIEngine],
) -> None:
    stub, engine = stub_and_engine
    request = txt2img(init_image=init_image(), mask=outpaint_mask(), strength=1.0)
    await engine.generate(request, ProgressLog())

    workflow = stub.bodies["/prompt"][0]["prompt"]
    graph = nodes(workflow)
    mask = stub.uploads[graph["LoadImageMask"]["image"]].convert("RGB")
    assert graph["LoadImageMask"]["channel"] == "red"
    assert channels(mask, 60, 10)[0] == 255
    assert channels(mask, 10, 10)[0] == 0
    # The canvas is encoded as it is (VAEEncodeForInpaint would grey the pre-filled border, which
    # only an inpainting checkpoint can fill), and only the masked border is sampled again...
    ids = {node["class_type"]: node_id for node_id, node in workflow.items()}
    assert "VAEEncodeForInpaint" not in graph
    assert graph["VAEEncode"]["pixels"] == [ids["LoadImage"], 0]
    assert graph["SetLatentNoiseMask"] == {
        "samples": [ids["VAEEncode"], 0],
        "mask": [ids["LoadImageMask"], 0],
    }
    assert graph["KSampler"]["latent_image"] == [ids["SetLatentNoiseMask"], 0]
    # ...starting from that border, not from pure noise, so that it continues the picture.
    assert graph["KSampler"]["denoise"] == OUTPAINT_STRENGTH
    assert 0.85 <= OUTPAINT_STRENGTH <= 0.9


async def test_older_servers_without_execution_success_still_finish(
    stub_and_engine: tuple[ComfyUIStub, ComfyUIEngine],
) -> None:
    stub, quick = stub_and_engine
    stub.mode = "legacy"
    # A long poll interval: only the websocket's `executing {node: null}` can end each prompt.
    engine = ComfyUIEngine(quick.service.base_url, poll_interval=5.0, checkpoint=CHECKPOINTS[0])
    try:
        async with asyncio.timeout(2.0):
            tiles = await engine.generate(txt2img(), ProgressLog())
    finally:
        await engine.close()
    assert [t.getpixel((0, 0)) for t in tiles] == [seed_colour(s) for s in SEEDS]


async def test_without_a_websocket_the_history_is_polled(
    stub_and_engine: tuple[ComfyUIStub, ComfyUIEngine],
) -> None:
    stub, engine = stub_and_engine
    stub.websocket = False
    progress = ProgressLog()
    tiles = await engine.generate(txt2img(), progress)
    assert [t.getpixel((0, 0)) for t in tiles] == [seed_colour(s) for s in SEEDS]
    assert not progress.previews  # previews only come over the websocket
    assert sum(n for path, n in stub.hits.items() if path.startswith("/history/")) >= 4


async def test_an_execution_error_names_the_node_and_the_reason(
    stub_and_engine: tuple[ComfyUIStub, ComfyUIEngine],
) -> None:
    stub, engine = stub_and_engine
    stub.mode = "error"
    with pytest.raises(EngineError) as caught:
        await engine.generate(txt2img(), ProgressLog())
    assert caught.value.code is ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND
    assert "KSampler" in caught.value.message
    assert "CUDA out of memory" in caught.value.message


async def test_a_rejected_workflow_names_the_node_and_the_variables(
    stub_and_engine: tuple[ComfyUIStub, ComfyUIEngine],
) -> None:
    stub, engine = stub_and_engine
    stub.mode = "invalid"
    with pytest.raises(EngineError) as caught:
        await engine.generate(txt2img(), ProgressLog())
    assert caught.value.code is ResultCode.FAILED_TO_REQUEST
    assert "CheckpointLoaderSimple" in caught.value.message
    assert "COMFYUI_CHECKPOINT" in caught.value.message


async def test_server_errors_are_retried(
    stub_and_engine: tuple[ComfyUIStub, ComfyUIEngine],
) -> None:
    stub, engine = stub_and_engine
    stub.fail_next("/prompt", 503, times=2)
    tiles = await engine.generate(txt2img(seeds=(5,)), ProgressLog())
    assert stub.hits["/prompt"] == 3
    assert tiles[0].getpixel((0, 0)) == seed_colour(5)


async def test_a_malformed_answer_is_a_processing_failure(
    stub_and_engine: tuple[ComfyUIStub, ComfyUIEngine],
) -> None:
    stub, engine = stub_and_engine
    stub.malformed("/prompt")
    with pytest.raises(EngineError) as caught:
        await engine.generate(txt2img(), ProgressLog())
    assert caught.value.code is ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND


async def test_a_stuck_job_times_out_and_is_stopped(
    stub_and_engine: tuple[ComfyUIStub, ComfyUIEngine],
) -> None:
    stub, engine = stub_and_engine
    stub.mode = "stuck"
    with pytest.raises(EngineError) as caught:
        await engine.generate(txt2img(), ProgressLog())
    assert caught.value.code is ResultCode.BOT_TOOK_TOO_LONG_TO_PROCESS_YOUR_COMMAND
    assert stub.hits["/interrupt"] == 1
    assert stub.deleted == set(stub.prompts)  # every unfinished prompt


async def test_cancel_deletes_the_queue_and_interrupts_the_running_prompt(
    stub_and_engine: tuple[ComfyUIStub, ComfyUIEngine],
) -> None:
    stub, engine = stub_and_engine
    stub.mode = "stuck"
    calls = ProgressLog(cancel_when=lambda f: len(calls.fractions) > 2)
    with pytest.raises(EngineCancelled):
        await engine.generate(txt2img(), calls)
    [interrupt] = stub.bodies["/interrupt"]
    first = next(iter(stub.prompts))
    assert interrupt == {"prompt_id": first}
    assert stub.deleted == set(stub.prompts)


async def test_cancelling_the_task_stops_the_server(
    stub_and_engine: tuple[ComfyUIStub, ComfyUIEngine],
) -> None:
    stub, engine = stub_and_engine
    stub.mode = "stuck"
    task = asyncio.create_task(engine.generate(txt2img(), ProgressLog()))
    while len(stub.prompts) < 4:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stub.hits["/interrupt"] == 1


async def test_start_picks_the_first_checkpoint_when_none_is_set(
    stub_and_engine: tuple[ComfyUIStub, ComfyUIEngine],
) -> None:
    _, engine = stub_and_engine
    assert engine.checkpoint == CHECKPOINTS[0]


async def test_start_checks_the_server_and_the_checkpoint(serve: StartStub[ComfyUIStub]) -> None:
    unreachable = ComfyUIEngine(closed_port_url(), retry=FAST_RETRY, timeouts=FAST_TIMEOUTS)
    with pytest.raises(EngineUnavailable, match="COMFYUI_URL"):
        await unreachable.start()
    await unreachable.close()

    server = await serve(ComfyUIStub())
    missing = engine_for(server, checkpoint="nope.safetensors")
    with pytest.raises(EngineUnavailable, match="COMFYUI_CHECKPOINT"):
        await missing.start()
    await missing.close()


async def test_a_workflow_folder_replaces_the_shipped_templates(
    serve: StartStub[ComfyUIStub], tmp_path: Path
) -> None:
    shipped = Path(__file__).parents[3] / "imagine" / "engines" / "workflows" / "txt2img.json"
    custom = json.loads(shipped.read_text())
    custom["3"]["inputs"]["sampler_name"] = "dpmpp_2m"
    custom["6"]["inputs"]["text"] = "{{prompt}}, masterpiece"
    (tmp_path / "txt2img.json").write_text(json.dumps(custom))
    stub = ComfyUIStub()
    engine = engine_for(await serve(stub), workflows=tmp_path, checkpoint=CHECKPOINTS[1])
    await engine.start()
    await engine.generate(txt2img(seeds=(3,)), ProgressLog())
    await engine.close()

    graph = stub.bodies["/prompt"][0]["prompt"]
    assert graph["3"]["inputs"]["sampler_name"] == "dpmpp_2m"
    assert graph["6"]["inputs"]["text"] == "a red fox in snow, masterpiece"
    assert graph["4"]["inputs"]["ckpt_name"] == CHECKPOINTS[1]


def test_from_settings_reads_its_variables(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailable, match="Set COMFYUI_URL"):
        create_engine(settings.with_(engine="comfyui"))
    env = {"COMFYUI_URL": "http://10.0.0.5:8188", "COMFYUI_WORKFLOWS": str(tmp_path / "none")}
    with pytest.raises(EngineUnavailable, match="not a folder"):
        create_engine(settings.with_(engine="comfyui", environ=env))
    (tmp_path / "img2img.json").write_text(
        '{"1": {"class_type": "X", "inputs": {"a": "{{oops}}"}}}'
    )
    env["COMFYUI_WORKFLOWS"] = str(tmp_path)
    with pytest.raises(EngineUnavailable, match="unknown placeholders"):
        create_engine(settings.with_(engine="comfyui", environ=env))
