"""Cancelling jobs on both databases, through the real app: a queued one ends at once, a running
one stops its engine (here, or in another service on the same database through the lease), a
late result of a cancelled render is fenced off, and a burst of cancels racing two workers ends
every job exactly once."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from imagine.engines.base import GenerateRequest, ProgressCallback
from imagine.engines.placeholder import PlaceholderEngine
from imagine.jobs import JobStatus
from imagine.keys import SERVICE
from imagine.previews import image_key
from imagine.runner import Runner
from imagine.service import ImagineService
from tests.backends import on_both_databases as backend  # noqa: F401 (a fixture: every test on each)
from tests.service.conftest import ClientFactory, submit, wait_done

Client = TestClient[Any, Any]
A, B = "token-a", "token-b"
FILES = ("grid.jpg", "0.png", "1.png", "2.png", "3.png", "preview-0.jpg", "preview-1.jpg")


def service_of(client: Client) -> ImagineService:
    return client.app[SERVICE]


async def cancel(client: Client, message_id: object, **headers: str) -> tuple[int, dict[str, Any]]:
    response = await client.post("/v2/cancel", json={"messageId": message_id}, headers=headers)
    data: dict[str, Any] = await response.json()
    return response.status, data


async def status_of(client: Client, message_id: str, **headers: str) -> str:
    data = await (await client.get(f"/v2/message/{message_id}", headers=headers)).json()
    return str(data["response"]["status"] if data["progress"] == 100 else data["status"])


async def until(what: Any, timeout: float = 10.0) -> None:
    """Wait until ``what()`` (a coroutine function or a plain one) is true."""
    async with asyncio.timeout(timeout):
        while True:
            value = what()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return
            await asyncio.sleep(0.02)


async def running(client: Client, message_id: str, timeout: float = 10.0) -> None:
    await until(lambda: _is(client, message_id, "running"), timeout)


async def _is(client: Client, message_id: str, status: str) -> bool:
    return await status_of(client, message_id) == status


async def files_of(service: ImagineService, job_id: str) -> list[str]:
    return [name for name in FILES if await service.storage.exists(image_key(job_id, name))]


@pytest.fixture
async def hook() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook receiver: its URL and the bodies it got, in order."""
    bodies: list[dict[str, Any]] = []

    async def receive(request: web.Request) -> web.Response:
        bodies.append(json.loads(await request.read()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", receive)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/hook")), bodies
    await server.close()


async def test_a_queued_job_ends_at_once_and_leaves_the_queue(make_client: ClientFactory) -> None:
    client = await make_client(engine=PlaceholderEngine(seconds=5))
    first = (await submit(client, "the one that renders"))["messageId"]
    queued = [(await submit(client, f"waiting {n}"))["messageId"] for n in range(5)]
    await running(client, first)
    answers = await asyncio.gather(*(cancel(client, job_id) for job_id in queued))
    assert answers == [(200, {"success": True, "messageId": i, "status": "failed"}) for i in queued]
    for job_id in queued:
        done = await wait_done(client, job_id, timeout=2)
        assert (done["status"], done["content"]) == ("failed", "CANCELLED")
        assert done["error"] == "Cancelled before it started."
        assert (done["imageUrl"], done["buttons"]) == (None, [])
    info = await (await client.get("/v2/info")).json()
    assert (info["queued"], info["running"]) == (0, 1)
    service = service_of(client)
    assert await service.store.count_waiting() == 0
    assert (await service.store.queue_snapshot())[0] == []
    again = await cancel(client, queued[0])
    assert again[0] == 409
    assert again[1]["msg"] == "That job has already finished."
    assert await cancel(client, first) == (
        200, {"success": True, "messageId": first, "status": "failed"},
    )  # fmt: skip


async def test_a_running_job_stops_its_engine_and_frees_the_worker(
    make_client: ClientFactory, hook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, bodies = hook
    client = await make_client(engine=PlaceholderEngine(seconds=5), webhook_url=url)
    service = service_of(client)
    job_id = (await submit(client, "a long render"))["messageId"]
    after = (await submit(client, "the next one"))["messageId"]
    await running(client, job_id)
    await asyncio.sleep(0.3)  # well into its render
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert (await cancel(client, job_id))[0] == 200
    done = await wait_done(client, job_id, timeout=2)
    assert (done["status"], done["content"]) == ("failed", "CANCELLED")
    assert done["error"] == "Cancelled while it was rendering."
    # the engine stopped: the worker let go of the job and took the next one
    await until(lambda: job_id not in service.runner.states, timeout=2)
    await running(client, after, timeout=2)
    assert loop.time() - started < 2.5
    assert await files_of(service, job_id) == []  # no result images, no previews
    stored = await service.store.get(job_id)
    assert stored is not None
    assert (stored.status, stored.error_code, stored.result.get("images")) == (
        JobStatus.FAILED, "CANCELLED", None,
    )  # fmt: skip
    await until(lambda: any(b["originatingMessageId"] == job_id for b in bodies))
    assert (await cancel(client, after))[0] == 200
    await until(lambda: len(bodies) == 2)
    await asyncio.sleep(0.3)
    assert [(b["originatingMessageId"], b["status"], b["content"]) for b in bodies] == [
        (job_id, "failed", "CANCELLED"), (after, "failed", "CANCELLED"),
    ]  # fmt: skip


async def test_a_cancel_in_another_service_stops_the_render_through_the_lease(
    make_client: ClientFactory,
) -> None:
    """Two services on one database, each with its own pool: the one that takes the cancel does
    not render the job, so only the lost lease can tell the worker of the other."""
    renderer = await make_client(engine=PlaceholderEngine(seconds=5))
    api = await make_client(engine=PlaceholderEngine(), workers=0)
    job_id = (await submit(api, "rendered elsewhere"))["messageId"]
    await running(api, job_id)
    pool = service_of(renderer).pool
    await until(lambda: any(job.id == job_id for job, _ in pool.running.values()))
    assert job_id not in service_of(api).runner.states
    started = asyncio.get_running_loop().time()
    assert (await cancel(api, job_id))[0] == 200
    await until(lambda: not pool.running, timeout=4)  # a renewal (≤ 1 s), then the next step
    assert asyncio.get_running_loop().time() - started < 4
    for client in (renderer, api):
        done = await wait_done(client, job_id, timeout=1)
        assert (done["status"], done["content"]) == ("failed", "CANCELLED")
    assert await files_of(service_of(renderer), job_id) == []
    next_id = (await submit(api, "the worker is free"))["messageId"]
    await running(api, next_id, timeout=3)
    assert (await cancel(renderer, next_id))[0] == 200


class Gated(PlaceholderEngine):
    """Renders only once let through, and then without a progress report: an engine whose last
    step is done just as the cancel lands, so nothing tells it to stop."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def generate(
        self, request: GenerateRequest, progress: ProgressCallback
    ) -> list[Image.Image]:
        self.entered.set()
        await self.gate.wait()
        return await super().generate(request, lambda *_: None)


async def test_a_result_that_lands_after_the_cancel_is_fenced_off(
    make_client: ClientFactory, hook: tuple[str, list[dict[str, Any]]]
) -> None:
    """A worker elsewhere (a runner of its own, on the same database) finishes the render after
    the cancel: its save under the old lease is refused, the cancel stands, one webhook goes."""
    url, bodies = hook
    api = await make_client(engine=PlaceholderEngine(), workers=0, webhook_url=url)
    service = service_of(api)
    job_id = (await submit(api, "a race with the cancel"))["messageId"]
    claimed = await service.store.claim("elsewhere:1", 30, job_id)
    assert claimed is not None
    job, lease = claimed
    engine = Gated()
    late = Runner(service.store, engine, service.storage, service.runner.context, 30,
                  service._webhook_for)  # fmt: skip
    render = asyncio.create_task(late.run(job, lease))
    await engine.entered.wait()
    assert (await cancel(api, job_id))[0] == 200
    engine.gate.set()
    ended = await render
    assert ended.status is JobStatus.DONE  # what it rendered, never saved:
    stored = await service.store.get(job_id)
    assert stored is not None
    assert (stored.status, stored.error_code) == (JobStatus.FAILED, "CANCELLED")
    assert stored.error == "Cancelled while it was rendering."
    assert not await service.store.renew(job_id, lease, 30, 1.0, None)
    done = await wait_done(api, job_id, timeout=1)
    assert (done["status"], done["content"], done["imageUrl"]) == ("failed", "CANCELLED", None)
    await until(lambda: bodies)
    await asyncio.sleep(0.5)
    assert [(b["originatingMessageId"], b["status"]) for b in bodies] == [(job_id, "failed")]


async def test_a_late_result_on_a_worker_pool_leaves_no_files(make_client: ClientFactory) -> None:
    """The same race on a real pool in another service: its worker stores the grid, saves
    nothing, and removes what it stored once it has stopped."""
    engine = Gated()
    renderer = await make_client(engine=engine)
    api = await make_client(engine=PlaceholderEngine(), workers=0)
    job_id = (await submit(api, "a grid that comes too late"))["messageId"]
    await engine.entered.wait()
    assert (await cancel(api, job_id))[0] == 200
    engine.gate.set()
    pool = service_of(renderer).pool
    await until(lambda: not pool.running, timeout=4)
    await until(lambda: _no_files(api, job_id))
    done = await wait_done(renderer, job_id, timeout=1)
    assert (done["status"], done["content"]) == ("failed", "CANCELLED")


async def _no_files(client: Client, job_id: str) -> bool:
    return await files_of(service_of(client), job_id) == []


async def test_a_burst_of_cancels_racing_two_workers_ends_each_job_once(
    make_client: ClientFactory, hook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, bodies = hook
    client = await make_client(engine=PlaceholderEngine(seconds=0.2), max_concurrent=2,
                               webhook_url=url)  # fmt: skip
    service = service_of(client)
    ids = [
        job_id
        for accepted in await asyncio.gather(*(submit(client, f"race {n}") for n in range(30)))
        for job_id in [accepted["messageId"]]
    ]
    order = random.Random(7).sample(ids, len(ids))

    async def cancel_soon(n: int, job_id: str) -> tuple[str, int, dict[str, Any]]:
        await asyncio.sleep(n * 0.03)  # spread over the first renders: queued, running, done
        status, data = await cancel(client, job_id)
        return job_id, status, data

    answers = await asyncio.gather(*(cancel_soon(n, i) for n, i in enumerate(order)))
    assert {status for _, status, _ in answers} <= {200, 409}, answers
    acknowledged = {job_id for job_id, status, _ in answers if status == 200}
    refused = {job_id for job_id, status, _ in answers if status == 409}
    assert acknowledged, "the burst should catch jobs before their end"
    assert refused, "and after it"
    for _, status, data in answers:
        if status == 409:
            assert data["msg"] == "That job has already finished."
    for job_id in ids:
        done = await wait_done(client, job_id, timeout=20)
        if job_id in acknowledged:
            assert (done["status"], done["content"]) == ("failed", "CANCELLED"), done
        else:
            assert done["status"] == "done", done
    await until(lambda: len(bodies) >= len(ids), timeout=20)
    await until(lambda: not service.pool.running)
    await asyncio.sleep(0.5)  # nothing more arrives
    finals = [(b["originatingMessageId"], b["status"]) for b in bodies]
    assert sorted(finals) == sorted(
        (i, "failed" if i in acknowledged else "done") for i in ids
    )  # each job's outcome, once
    assert await service.store.count_waiting() == 0
    assert await service.store.count_running() == 0
    assert (await service.store.queue_snapshot())[0] == []
    for job_id in acknowledged:
        assert await files_of(service, job_id) == []


async def test_a_user_at_the_cap_who_cancels_can_submit_again(make_client: ClientFactory) -> None:
    client = await make_client(engine=PlaceholderEngine(seconds=30))
    user = json.dumps({"user": "7"})
    first = await submit(client, "one", ref=user, maxUnfinished=2)
    second = await submit(client, "two", ref=user, maxUnfinished=2)
    capped = await client.post("/v2/imagine", json={"msg": "three", "ref": user,
                                                    "maxUnfinished": 2})  # fmt: skip
    assert capped.status == 429
    await running(client, first["messageId"])
    results = await asyncio.gather(cancel(client, first["messageId"]),
                                   cancel(client, second["messageId"]))  # fmt: skip
    assert [status for status, _ in results] == [200, 200]
    info = await (await client.get("/v2/info?user=7")).json()
    assert (info["userUnfinished"], info["queued"]) == (0, 0)
    again = await asyncio.gather(*(
        client.post("/v2/imagine", json={"msg": f"again {n}", "ref": user, "maxUnfinished": 2})
        for n in range(2)
    ))  # fmt: skip
    assert [r.status for r in again] == [200, 200]
    for response in again:
        assert (await cancel(client, (await response.json())["messageId"]))[0] == 200


async def test_only_the_owner_cancels_and_every_refusal_is_a_sentence(
    make_client: ClientFactory,
) -> None:
    client = await make_client(engine=PlaceholderEngine(seconds=5), api_tokens=(A, B))
    a, b = {"Authorization": f"Bearer {A}"}, {"Authorization": f"Bearer {B}"}
    made = await client.post("/v2/imagine", json={"msg": "mine"}, headers=a)
    job_id = (await made.json())["messageId"]
    status, data = await cancel(client, job_id, **b)
    assert (status, data) == (404, {"success": False, "msg": f"No message has id {job_id!r}."})
    assert await status_of(client, job_id, **a) in ("queued", "running")
    assert (await cancel(client, "1234567890", **a))[0] == 404
    unauthorised = await client.post("/v2/cancel", json={"messageId": job_id})
    assert unauthorised.status == 401
    bad_bodies: list[tuple[Any, str]] = [
        (None, "no body"),
        (b"not json", "not valid JSON"),
        ([job_id], "JSON object"),
        ({}, "'messageId' is missing"),
        ({"messageId": 5}, "must be a string"),
        ({"messageId": "  "}, "'messageId' is empty"),
        ({"messageId": "x" * 101}, "the limit is 100"),
    ]
    for raw, words in bad_bodies:
        if raw is None:
            response = await client.post("/v2/cancel", headers=a)
        elif isinstance(raw, bytes):
            response = await client.post("/v2/cancel", data=raw, headers=a)
        else:
            response = await client.post("/v2/cancel", json=raw, headers=a)
        assert response.status == 400, raw
        answer = await response.json()
        assert answer["success"] is False
        assert words in answer["msg"], (raw, answer)
    assert (await cancel(client, job_id, **a))[0] == 200
    status, data = await cancel(client, job_id, **a)
    assert status == 409
    assert data == {"success": False, "msg": "That job has already finished.",
                    "code": "JOB_ACTION_RESTRICTED", "messageId": job_id, "ended": "failed"}  # fmt: skip


async def test_a_finished_job_cannot_be_cancelled(make_client: ClientFactory) -> None:
    client = await make_client()
    ids = [(await submit(client, f"quick {n}"))["messageId"] for n in range(3)]
    for job_id in ids:
        await wait_done(client, job_id)
    answers = await asyncio.gather(*(cancel(client, job_id) for job_id in ids))
    for job_id, (status, data) in zip(ids, answers, strict=True):
        assert status == 409
        assert data["msg"] == "That job has already finished."
        assert data["ended"] == "done"
        done = await wait_done(client, job_id)
        assert done["status"] == "done"
        assert done["imageUrl"]
