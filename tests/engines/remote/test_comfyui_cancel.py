"""ComfyUI is shared: a cancel takes our prompts off its queue and never stops another client's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from imagine.engines import comfyui_workflows
from imagine.engines.base import EngineCancelled
from imagine.engines.comfyui import ComfyUIEngine
from tests.engines.remote.comfyui_stub import ComfyUIStub
from tests.engines.remote.conftest import FAST_RETRY, FAST_TIMEOUTS, ProgressLog, StartStub, txt2img


@pytest.fixture
async def stub_and_engine(
    serve: StartStub[ComfyUIStub],
) -> AsyncIterator[tuple[ComfyUIStub, ComfyUIEngine]]:
    stub = ComfyUIStub()
    stub.mode = "stuck"  # every prompt runs until it is interrupted
    url = str((await serve(stub)).make_url(""))
    engine = ComfyUIEngine(url, retry=FAST_RETRY, timeouts=FAST_TIMEOUTS, poll_interval=0.05)
    await engine.start()
    yield stub, engine
    await engine.close()


async def test_cancel_never_interrupts_another_clients_prompt(
    stub_and_engine: tuple[ComfyUIStub, ComfyUIEngine],
) -> None:
    stub, engine = stub_and_engine
    template = comfyui_workflows.load_templates(None)["txt2img"]
    theirs = comfyui_workflows.fill(template, {"seed": 1, "width": 64, "height": 64})
    session = engine.service.session()
    async with session.post(
        engine.service.url("/prompt"), json={"prompt": theirs, "client_id": "someone-else"}
    ) as response:
        their_id = (await response.json())["prompt_id"]
    while stub.running != their_id:
        await asyncio.sleep(0.01)

    calls = ProgressLog(cancel_when=lambda f: len(calls.fractions) > 2)
    with pytest.raises(EngineCancelled):
        await engine.generate(txt2img(), calls)

    ours = set(stub.prompts) - {their_id}
    assert len(ours) == 4
    assert stub.deleted == ours  # ours are off the queue...
    assert stub.hits["/interrupt"] == 0  # ...and theirs, still running, was left alone
    assert stub.interrupted_prompts == []
    assert stub.running == their_id


@pytest.mark.parametrize("targeted", [False, True])
async def test_cancel_interrupts_our_running_prompt_on_old_and_new_servers(
    stub_and_engine: tuple[ComfyUIStub, ComfyUIEngine], targeted: bool
) -> None:
    stub, engine = stub_and_engine
    stub.targeted_interrupt = targeted
    calls = ProgressLog(cancel_when=lambda f: len(calls.fractions) > 2)
    with pytest.raises(EngineCancelled):
        await engine.generate(txt2img(), calls)
    first = next(iter(stub.prompts))
    assert stub.interrupted_prompts == [first]
    assert stub.bodies["/interrupt"] == [{"prompt_id": first}]
