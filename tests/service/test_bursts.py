"""Limits and tenancy under bursts: real simultaneous requests against the real app.

Each burst is sent at once (asyncio.gather over one client session), not in a loop, since a
check that reads a count and then awaits the insert lets a whole burst through.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image
from yarl import URL

from imagine.engines.placeholder import PlaceholderEngine
from imagine.jobs import Job
from imagine.settings import Settings
from imagine.store import JobStore, LimitReached, Quota, open_store
from tests.backends import on_both_databases as backend  # noqa: F401 (a fixture: every test on each)
from tests.service.conftest import ClientFactory, wait_done

Client = TestClient[Any, Any]


async def _burst(client: Client, path: str, bodies: list[dict[str, Any]], **kw: Any) -> list[Any]:
    async def one(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        response = await client.post(path, json=body, **kw)
        return response.status, await response.json()

    return list(await asyncio.gather(*(one(body) for body in bodies)))


def _user(name: str) -> str:
    return json.dumps({"user": name})


async def test_200_at_once_from_one_user_accept_exactly_the_cap(make_client: ClientFactory) -> None:
    client = await make_client(
        engine=PlaceholderEngine(seconds=30), max_jobs_per_user=3, rate_per_user=0
    )
    answers = await _burst(
        client, "/v2/imagine", [{"msg": f"cat {n}", "ref": _user("u1")} for n in range(200)]
    )
    statuses = Counter(status for status, _ in answers)
    assert statuses == {200: 3, 429: 197}
    refusal = next(body for status, body in answers if status == 429)
    assert refusal["msg"].startswith("You have 3 unfinished jobs")
    assert "the limit is 3" in refusal["msg"]
    info = await (await client.get("/v2/info?user=u1")).json()
    assert info["userUnfinished"] == 3


async def test_two_at_a_time_never_overshoot(make_client: ClientFactory) -> None:
    client = await make_client(
        engine=PlaceholderEngine(seconds=30), max_jobs_per_user=3, rate_per_user=0
    )
    accepted = 0
    for pair in range(4):
        answers = await _burst(
            client, "/v2/imagine", [{"msg": f"cat {pair} {n}", "ref": _user("u1")} for n in (1, 2)]
        )
        accepted += sum(status == 200 for status, _ in answers)
    assert accepted == 3


async def test_queue_limit_holds_for_200_users_at_once(make_client: ClientFactory) -> None:
    client = await make_client(
        engine=PlaceholderEngine(seconds=30), queue_limit=10, rate_per_user=0
    )
    answers = await _burst(
        client, "/v2/imagine", [{"msg": f"cat {n}", "ref": _user(f"u{n}")} for n in range(200)]
    )
    accepted = sum(status == 200 for status, _ in answers)
    # at most the limit wait; one more may have left the queue for the worker meanwhile
    assert 10 <= accepted <= 11
    info = await (await client.get("/v2/info")).json()
    assert info["queued"] <= 10
    full = [body for status, body in answers if status == 429]
    assert all(body["code"] == "QUEUE_FULL" and "queue is full" in body["msg"] for body in full)


async def _grid(client: Client, user: str, **headers: str) -> dict[str, Any]:
    response = await client.post(
        "/v2/imagine", json={"msg": "a lighthouse", "ref": _user(user)}, headers=headers
    )
    assert response.status == 200, await response.text()
    return await wait_done(client, (await response.json())["messageId"])


async def test_presses_count_against_the_presser_not_the_owner(make_client: ClientFactory) -> None:
    engine = PlaceholderEngine()
    client = await make_client(engine=engine, max_jobs_per_user=3, rate_per_user=0)
    grid = await _grid(client, "owner")
    engine.seconds = 30  # from now on, renders stay unfinished
    buttons = ["V1", "V2", "V3", "V4", "🔄"] * 40
    answers = await _burst(
        client,
        "/v2/button",
        [
            {"buttonMessageId": grid["buttonMessageId"], "button": b, "ref": _user("presser")}
            for b in buttons
        ],
    )
    assert Counter(status for status, _ in answers) == {200: 3, 429: 197}
    presser = await (await client.get("/v2/info?user=presser")).json()
    owner = await (await client.get("/v2/info?user=owner")).json()
    assert (presser["userUnfinished"], owner["userUnfinished"]) == (3, 0)
    # the owner's own cap is untouched by the presser's jobs
    mine = await _burst(
        client, "/v2/imagine", [{"msg": f"mine {n}", "ref": _user("owner")} for n in range(5)]
    )
    assert sum(status == 200 for status, _ in mine) == 3


async def test_blends_count_against_the_cap(make_client: ClientFactory, tmp_path: Path) -> None:
    server = await _image_server(tmp_path)
    try:
        client = await make_client(
            engine=PlaceholderEngine(seconds=30), max_jobs_per_user=2, rate_per_user=0
        )
        urls = [str(server.make_url("/a.png")), str(server.make_url("/b.png"))]
        answers = await _burst(
            client, "/v2/blend", [{"urls": urls, "ref": _user("u1")} for _ in range(20)]
        )
        assert Counter(status for status, _ in answers) == {200: 2, 429: 18}
    finally:
        await server.close()


async def test_the_cap_holds_across_processes_sharing_the_database(settings: Settings) -> None:
    """Two stores on one database stand in for two API processes: the quota is checked in the
    insert's transaction, under the database's write lock (SQLite) or one advisory lock
    (PostgreSQL), so together they take 3, and the queue limit holds the same way."""
    first, second = await open_store(settings), await open_store(settings)
    quota = Quota("tok:u1", owner_cap=3, queue_limit=None, waiting=1)

    async def add(store: JobStore, n: int) -> bool:
        job = Job(id=f"j{n}", button_message_id=f"b{n}", action="imagine", type="imagine",
                  owner="tok:u1", content="x", prompt={})  # fmt: skip
        try:
            await store.add([job], quota)
        except LimitReached:
            return False
        return True

    async def add_for(store: JobStore, n: int) -> bool:  # one job per user, 12 waiting at most
        job = Job(id=f"q{n}", button_message_id=f"qb{n}", action="imagine", type="imagine",
                  owner=f"tok:q{n}", content="x", prompt={})  # fmt: skip
        try:
            await store.add([job], Quota(job.owner, owner_cap=None, queue_limit=15, waiting=1))
        except LimitReached:
            return False
        return True

    try:
        results = await asyncio.gather(*(add(first if n % 2 else second, n) for n in range(100)))
        assert sum(results) == 3
        assert await first.count_unfinished("tok:u1") == 3
        queued = await asyncio.gather(*(add_for(second if n % 2 else first, n) for n in range(100)))
        assert sum(queued) == 12  # the 3 above wait too
        assert await second.count_waiting() == 15
    finally:
        await first.close()
        await second.close()


# tenants: a job belongs to the token that made it


async def test_another_token_cannot_see_or_press_a_job(make_client: ClientFactory) -> None:
    client = await make_client(api_tokens=("tokA", "tokB"), rate_per_user=0)
    a, b = {"Authorization": "Bearer tokA"}, {"Authorization": "Bearer tokB"}
    response = await client.post(
        "/v2/imagine", json={"msg": "a secret prompt", "ref": _user("u1")}, headers=a
    )
    job_id = (await response.json())["messageId"]
    for _ in range(200):
        done = await (await client.get(f"/v2/message/{job_id}", headers=a)).json()
        if done["progress"] == 100:
            break
        await asyncio.sleep(0.02)
    grid = done["response"]
    # B, even holding the image URL (which names the job), learns nothing about the job
    image = await client.get(URL(grid["imageUrl"]).path)
    assert image.status == 200  # a capability URL: served to whoever holds it
    seen = await client.get(f"/v2/message/{job_id}", headers=b)
    assert seen.status == 404
    assert "secret" not in await seen.text()
    pressed = await client.post(
        "/v2/button",
        json={"buttonMessageId": grid["buttonMessageId"], "button": "V1", "ref": _user("u1")},
        headers=b,
    )
    assert pressed.status == 404
    assert (await pressed.json())["code"] == "BUTTON_NOT_FOUND"
    # A still reads it (now from the finished cache) and B still cannot
    assert (await client.get(f"/v2/message/{job_id}", headers=a)).status == 200
    assert (await client.get(f"/v2/message/{job_id}", headers=b)).status == 404
    # /v2/info?user= shows each token only its own users
    info_a = await (await client.get("/v2/info?user=u1", headers=a)).json()
    info_b = await (await client.get("/v2/info?user=u1", headers=b)).json()
    assert info_b["userUnfinished"] == 0
    assert "userUnfinished" in info_a
    # A's own press is charged to A's user, B's presses are never charged to A
    ok = await client.post(
        "/v2/button",
        json={"buttonMessageId": grid["buttonMessageId"], "button": "V1", "ref": _user("u1")},
        headers=a,
    )
    assert ok.status == 200


async def test_an_image_error_names_only_the_requests_own_link(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    """Two tokens send the same bytes (not an image) at once through different links: each is
    told of its own link, never of the other's (whose query string may hold a signature)."""
    server = await _image_server(tmp_path)
    try:
        client = await make_client(api_tokens=("tokA", "tokB"), rate_per_user=0)
        links = {
            token: f"{server.make_url('/junk.png')}?sig=secret-of-{token}"
            for token in ("tokA", "tokB")
        }
        answers = await asyncio.gather(*(
            client.post("/v2/imagine", json={"msg": f"{link} a cat"},
                        headers={"Authorization": f"Bearer {token}"})
            for token, link in links.items()
        ))  # fmt: skip
        for (token, link), response in zip(links.items(), answers, strict=True):
            body = await response.json()
            assert response.status == 400, body
            assert link in body["msg"]
            other = "tokB" if token == "tokA" else "tokA"
            assert f"secret-of-{other}" not in body["msg"]
    finally:
        await server.close()


# the same new image, many times at once


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


async def _image_server(tmp_path: Path) -> TestServer:
    # noise, large enough that storing it takes a while: writers of one image overlap
    noisy = Image.frombytes("RGB", (1024, 1024), random.Random(7).randbytes(1024 * 1024 * 3))
    files = {
        "a.png": _png(Image.new("RGB", (256, 256), (200, 30, 30))),
        "b.png": _png(Image.new("RGB", (256, 256), (30, 30, 200))),
        "noise.png": _png(noisy),
        "junk.png": b"\x89PNG not really" * 1000,
    }

    async def serve(request: web.Request) -> web.Response:
        await asyncio.sleep(0.05)  # requests overlap in flight
        return web.Response(body=files[request.match_info["name"]], content_type="image/png")

    app = web.Application()
    app.router.add_get("/{name}", serve)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.mark.parametrize("count", [3, 30])
async def test_the_same_new_image_at_once_is_stored_once_and_read_whole(
    make_client: ClientFactory, settings: Settings, tmp_path: Path, count: int
) -> None:
    server = await _image_server(tmp_path)
    try:
        client = await make_client(rate_per_user=0, max_concurrent=4)
        answers = await _burst(
            client,
            "/v2/imagine",
            [
                {"msg": f"{server.make_url('/noise.png')}?v={n} a noisy square"}
                for n in range(count)
            ],
        )
        assert [status for status, _ in answers] == [200] * count, answers
        for _, body in answers:
            done = await wait_done(client, body["messageId"], timeout=60)
            assert done["status"] == "done", done
        assert len(list((settings.data_dir / "inputs").iterdir())) == 1
    finally:
        await server.close()


async def test_no_temporary_files_are_left_by_a_burst_of_one_image(
    make_client: ClientFactory, settings: Settings, tmp_path: Path
) -> None:
    server = await _image_server(tmp_path)
    try:
        client = await make_client(rate_per_user=0)
        answers = await _burst(
            client,
            "/v2/imagine",
            [{"msg": f"{server.make_url('/b.png')}?n={n} blue"} for n in range(10)],
        )
        assert all(status == 200 for status, _ in answers)
        stored = sorted(p.name for p in (settings.data_dir / "inputs").iterdir())
        assert len(stored) == 1, stored
        assert stored[0].endswith(".png")
        assert not list(settings.data_dir.rglob("*.tmp"))
    finally:
        await server.close()
