"""midjourney-proxy's ``POST /mj/task/{id}/cancel`` (trueai's route) on both databases, read the
way new-api decodes it: the submit envelope, then a FAILURE task whose failReason says why, one
notifyHook delivery of it, codes for every refusal, the speed prefixes, and a burst racing two
workers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from imagine.engines.placeholder import PlaceholderEngine
from imagine.keys import SERVICE
from tests.backends import on_both_databases as backend  # noqa: F401 (a fixture: every test on each)
from tests.contract.newapi import NewApi, decode_envelope, decode_task
from tests.service.conftest import ClientFactory

A, B = "token-a", "token-b"


async def cancel(relay: NewApi, task_id: str, prefix: str = "") -> tuple[int, dict[str, Any]]:
    response = await relay.client.post(f"{prefix}/mj/task/{task_id}/cancel", headers=relay.headers)
    return response.status, decode_envelope(await response.json())


async def in_progress(relay: NewApi, task_id: str) -> None:
    async with asyncio.timeout(10):
        while (await relay.fetch(task_id))["status"] != "IN_PROGRESS":
            await asyncio.sleep(0.02)


@pytest.fixture
async def hook() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    bodies: list[dict[str, Any]] = []

    async def receive(request: web.Request) -> web.Response:
        bodies.append(json.loads(await request.read()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/notify", receive)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/notify")), bodies
    await server.close()


async def test_queued_and_running_tasks_end_as_failure(make_client: ClientFactory) -> None:
    client = await make_client(engine=PlaceholderEngine(seconds=5), api_tokens=(A,))
    relay = NewApi(client, A)
    rendering = await relay.accepted("imagine", {"prompt": "a slow lighthouse"})
    waiting = [await relay.accepted("imagine", {"prompt": f"a queued boat {n}"}) for n in range(3)]
    await in_progress(relay, rendering)
    prefixes = ["", "/mj-fast", "/mj-relax", "/mj-turbo"]
    answers = await asyncio.gather(*(
        cancel(relay, task_id, prefix)
        for task_id, prefix in zip([rendering, *waiting], prefixes, strict=True)
    ))  # fmt: skip
    for task_id, (status, answer) in zip([rendering, *waiting], answers, strict=True):
        assert status == 200
        assert answer == {"code": 1, "description": "Success", "result": task_id,
                          "properties": {}}  # fmt: skip
    tasks = await relay.poll([rendering, *waiting])
    assert [t["status"] for t in tasks] == ["FAILURE"] * 4
    assert [t["progress"] for t in tasks] == [""] * 4
    assert tasks[0]["failReason"] == "Cancelled while it was rendering."
    assert {t["failReason"] for t in tasks[1:]} == {"Cancelled before it started."}
    assert all(isinstance(t["finishTime"], int) and t["buttons"] == [] for t in tasks)
    assert tasks[0]["imageUrl"] == ""  # no preview of a render that was stopped
    assert await relay.fetch(rendering) == tasks[0]
    # and through TheNextLeg's contract: the failed message
    v2 = await client.get(f"/v2/message/{rendering}", headers={"Authorization": f"Bearer {A}"})
    message = await v2.json()
    assert message["progress"] == 100
    assert (message["response"]["status"], message["response"]["content"]) == (
        "failed", "CANCELLED",
    )  # fmt: skip
    assert message["response"]["error"] == "Cancelled while it was rendering."
    pool = client.app[SERVICE].pool
    async with asyncio.timeout(2):  # the worker stopped rendering it
        while any(job.id == rendering for job, _ in pool.running.values()):
            await asyncio.sleep(0.02)


async def test_refusals_are_codes_with_sentences(make_client: ClientFactory) -> None:
    client = await make_client(engine=PlaceholderEngine(seconds=5), api_tokens=(A, B))
    a, b = NewApi(client, A), NewApi(client, B)
    task_id = await a.accepted("imagine", {"prompt": "not yours"})
    status, answer = await cancel(b, task_id)
    assert (status, answer["code"], answer["result"]) == (404, 3, None)
    assert "No task" in answer["description"]
    assert (await a.fetch(task_id))["status"] in ("SUBMITTED", "IN_PROGRESS")
    status, answer = await cancel(a, "1700000000000123")
    assert (status, answer["code"]) == (404, 3)
    wrong = await client.post(f"/mj/task/{task_id}/cancel", headers={"mj-api-secret": "nope"})
    assert wrong.status == 401
    assert "mj-api-secret" in decode_envelope(await wrong.json())["description"]
    not_get = await client.get(f"/mj/task/{task_id}/cancel", headers=a.headers)
    assert not_get.status == 405
    assert decode_envelope(await not_get.json())["code"] == 9
    assert (await cancel(a, task_id))[1]["code"] == 1
    status, answer = await cancel(a, task_id)
    assert status == 200
    assert answer == {"code": 4, "description": "That job has already finished.", "result": None,
                      "properties": {"status": "FAILURE"}}  # fmt: skip


async def test_a_finished_task_cannot_be_cancelled(make_client: ClientFactory) -> None:
    relay = NewApi(await make_client())
    done = await relay.finished(await relay.accepted("imagine", {"prompt": "quick"}))
    status, answer = await cancel(relay, done["id"])
    assert (status, answer["code"], answer["properties"]) == (200, 4, {"status": "SUCCESS"})
    assert "already finished" in answer["description"]
    assert await relay.fetch(done["id"]) == done


async def test_notify_hook_gets_the_failure_once(
    make_client: ClientFactory, hook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, bodies = hook
    relay = NewApi(await make_client(engine=PlaceholderEngine(seconds=5)))
    rendering = await relay.accepted("imagine", {"prompt": "a bell", "notifyHook": url,
                                                 "state": "s1"})  # fmt: skip
    queued = await relay.accepted("imagine", {"prompt": "a gong", "notifyHook": url})
    await in_progress(relay, rendering)
    async with asyncio.timeout(5):
        while not bodies:  # the start's notice
            await asyncio.sleep(0.02)
    results = await asyncio.gather(cancel(relay, rendering), cancel(relay, queued))
    assert [answer["code"] for _, answer in results] == [1, 1]
    async with asyncio.timeout(10):
        while sum(b["status"] == "FAILURE" for b in bodies) < 2:
            await asyncio.sleep(0.02)
    await asyncio.sleep(1.5)  # a renewal later: the stopped worker sends nothing more
    for body in bodies:
        decode_task(body)
    of = {task_id: [b["status"] for b in bodies if b["id"] == task_id]
          for task_id in (rendering, queued)}  # fmt: skip
    assert of == {rendering: ["IN_PROGRESS", "FAILURE"], queued: ["FAILURE"]}
    failure = next(b for b in bodies if b["id"] == rendering and b["status"] == "FAILURE")
    assert failure == await relay.fetch(rendering)
    assert (failure["failReason"], failure["state"]) == ("Cancelled while it was rendering.", "s1")


async def test_a_burst_of_cancels_racing_two_workers(
    make_client: ClientFactory, hook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, bodies = hook
    relay = NewApi(await make_client(engine=PlaceholderEngine(seconds=0.2), max_concurrent=2))
    ids = await asyncio.gather(*(
        relay.accepted("imagine", {"prompt": f"a race {n}", "notifyHook": url}) for n in range(20)
    ))  # fmt: skip

    async def cancel_soon(n: int, task_id: str) -> tuple[str, int]:
        await asyncio.sleep(n * 0.04)
        status, answer = await cancel(relay, task_id)
        assert status == 200, answer
        return task_id, answer["code"]

    answers = dict(await asyncio.gather(*(cancel_soon(n, i) for n, i in enumerate(reversed(ids)))))
    assert set(answers.values()) <= {1, 4}
    async with asyncio.timeout(20):
        while True:
            tasks = await relay.poll(list(ids))
            if all(t["status"] in ("SUCCESS", "FAILURE") for t in tasks):
                break
            await asyncio.sleep(0.05)
    for task in tasks:
        assert task["status"] == ("FAILURE" if answers[task["id"]] == 1 else "SUCCESS"), task
    async with asyncio.timeout(20):
        while sum(b["status"] in ("SUCCESS", "FAILURE") for b in bodies) < len(ids):
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)
    finals = sorted((b["id"], b["status"]) for b in bodies if b["status"] != "IN_PROGRESS")
    assert finals == sorted((t["id"], t["status"]) for t in tasks)  # each outcome once
    for task_id in ids:  # never "in progress" after the outcome
        seen = [b["status"] for b in bodies if b["id"] == task_id]
        assert seen[-1] in ("SUCCESS", "FAILURE"), (task_id, seen)


async def test_a_cancel_through_another_service_stops_the_render(
    make_client: ClientFactory,
) -> None:
    renderer = await make_client(engine=PlaceholderEngine(seconds=5))
    api = NewApi(await make_client(engine=PlaceholderEngine(), workers=0))
    task_id = await api.accepted("imagine", {"prompt": "rendered elsewhere"})
    await in_progress(api, task_id)
    pool = renderer.app[SERVICE].pool
    assert (await cancel(api, task_id))[1]["code"] == 1
    async with asyncio.timeout(4):  # its next renewal finds the lease gone
        while pool.running:
            await asyncio.sleep(0.02)
    for relay in (api, NewApi(renderer)):
        task = await relay.fetch(task_id)
        assert (task["status"], task["failReason"]) == (
            "FAILURE", "Cancelled while it was rendering.",
        )  # fmt: skip


async def test_a_modal_task_waiting_for_its_prompt_can_be_cancelled(
    make_client: ClientFactory,
) -> None:
    client = await make_client(api_tokens=(A, B))
    relay = NewApi(client, A)
    grid_id = await relay.accepted("imagine", {"prompt": "a lighthouse"})
    grid = await relay.finished(grid_id)
    u1 = await relay.finished(
        await relay.accepted(
            "action", {"taskId": grid_id, "customId": relay.button(grid, "upsample::1")}
        )
    )
    zoom = await relay.submit("action", {"taskId": u1["id"],
                                         "customId": relay.button(u1, "CustomZoom")})  # fmt: skip
    assert zoom["code"] == 21
    modal_id = zoom["result"]
    # another token cannot see it, so cannot cancel it
    status, answer = await cancel(NewApi(client, B), modal_id)
    assert (status, answer["code"]) == (404, 3)
    status, answer = await cancel(relay, modal_id)
    assert (status, answer["code"], answer["result"]) == (200, 1, modal_id)
    task = await relay.fetch(modal_id)
    assert task["status"] == "FAILURE"
    assert task["failReason"] == "Cancelled before it started."
    # its prompt, sent late, is refused: the task has ended
    late = await relay.submit("modal", {"taskId": modal_id, "prompt": "a lighthouse --zoom 1.5"})
    assert late["code"] != 1
    status, again = await cancel(relay, modal_id)
    assert again["code"] == 4
    assert again["properties"]["status"] == "FAILURE"
