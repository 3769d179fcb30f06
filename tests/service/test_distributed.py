"""The distributed mode end to end, every part a real process: PostgreSQL, an S3 server (moto),
two API instances (``serve --workers 0``) and render workers (``worker``), on distinct loopback
addresses standing in for separate hosts.

Thirty jobs of five users go in through both APIs before any worker runs; mid-run one worker is
SIGKILLed while it renders, and so is one API. Every job still ends done, readable through the
surviving API, completed once (one webhook delivery id per job), with its images in the bucket,
and the users were served in turns.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from tests.infra.postgres import PgCluster
from tests.service.cluster import S3_ENV, Cluster, Proc, bucket_keys, s3_client, s3_object

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

LEASE = 3.0
"""IMAGINE_LEASE_SECONDS: a killed worker's job comes back this long after its last renewal."""
RENDER = 0.8
"""Seconds the placeholder engine takes per job in the big test."""
USERS = {"u0": 10, "u1": 5, "u2": 5, "u3": 5, "u4": 5}
"""Jobs per user, submitted in this order (u0's ten first)."""
DONE_BEFORE_KILLS = 8
API_A, API_B, S3_HOST = "127.0.0.2", "127.0.0.3", "127.0.0.5"
BUCKET, PREFIX = "imagine-e2e", "e2e"
JPEG, PNG = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"
STARTS_TOLERANCE = RENDER / 4
"""Two workers that claim at the same moment take consecutive jobs of the turn order, but each
reads the clock for started_at after its claim statement returns, so the two may be a scheduling
hiccup out of order. An unfair claim is a whole job (RENDER) or more out of order."""


class Receiver:
    """A webhook receiver: every delivery's Idempotency-Key and body, in arrival order."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[str, dict[str, Any]]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.deliveries.append((request.headers.get("Idempotency-Key", ""), await request.json()))
        return web.Response(text="ok")

    def by_job(self) -> dict[str, list[tuple[str, dict[str, Any]]]]:
        found: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
        for key, body in self.deliveries:
            found[str(body.get("originatingMessageId"))].append((key, body))
        return found


@pytest.fixture
async def receiver(aiohttp_server: Any) -> Receiver:
    hooks = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hooks.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    hooks.url = str(server.make_url("/hook"))
    return hooks


async def bring_up(cluster: Cluster, database_url: str, render: float) -> tuple[Proc, Proc, Proc]:
    """The S3 server and its bucket, the schema, and the two API instances (A, B)."""
    s3 = await cluster.s3(S3_HOST)
    await asyncio.to_thread(s3_client(s3.url).create_bucket, Bucket=BUCKET)
    cluster.env.update(
        S3_ENV,
        IMAGINE_DATABASE_URL=database_url,
        IMAGINE_STORAGE_URL=f"s3://{BUCKET}/{PREFIX}",
        IMAGINE_S3_ENDPOINT=s3.url,
        IMAGINE_LEASE_SECONDS=str(LEASE),
        IMAGINE_ENGINE="placeholder",
        IMAGINE_PLACEHOLDER_SECONDS=str(render),
        IMAGINE_ALLOW_PRIVATE_URLS="1",
        IMAGINE_RATE_PER_USER="0",
        IMAGINE_API_TOKENS="",
        IMAGINE_SHUTDOWN_GRACE="0",
    )
    await cluster.run("migrate", "migrate")
    api_a, api_b = await asyncio.gather(cluster.api("api-a", API_A), cluster.api("api-b", API_B))
    return s3, api_a, api_b


async def post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(url, json=body) as response:
        data: dict[str, Any] = await response.json()
        assert response.status == 200, (url, body, data)
        return data


async def message(http: aiohttp.ClientSession, api: Proc, job_id: str) -> dict[str, Any]:
    async with http.get(f"{api.url}/v2/message/{job_id}") as response:
        data: dict[str, Any] = await response.json()
        assert response.status == 200, (api.name, job_id, data)
        return data


async def wait_done(
    http: aiohttp.ClientSession, api: Proc, job_ids: list[str], cluster: Cluster, timeout: float
) -> dict[str, dict[str, Any]]:
    """Poll ``api`` like any client until every job is finished; their completed messages."""
    finished: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while len(finished) < len(job_ids):
        for job_id in job_ids:
            if (
                job_id not in finished
                and (got := await message(http, api, job_id))["progress"] == 100
            ):
                finished[job_id] = got["response"]
        if time.monotonic() > deadline:
            left = sorted(set(job_ids) - set(finished))
            raise AssertionError(f"{len(left)} job(s) not finished after {timeout:.0f} s: {left}")
        cluster.check_running()
        await asyncio.sleep(0.1)
    return finished


async def image(http: aiohttp.ClientSession, url: str) -> bytes:
    async with http.get(url) as response:
        assert response.status == 200, (url, response.status, await response.text())
        return await response.read()


def pid_of(worker: str) -> int:
    """The pid in a lease holder's name, ``host:pid:mark:number``."""
    return int(worker.split(":")[1])


def started(row: asyncpg.Record) -> datetime:
    return datetime.fromisoformat(row["started_at"]).astimezone(UTC)


async def kill_a_busy_worker(
    conn: asyncpg.Connection, cluster: Cluster, workers: list[Proc]
) -> tuple[Proc, str, str, float]:
    """Once DONE_BEFORE_KILLS jobs are done, SIGKILL a worker well inside a render (and holding
    no webhook delivery, whose claim would keep it from any other sender for minutes); the
    worker, its job, its lease holder's name and the time of the kill."""
    by_pid = {proc.pid: proc for proc in workers}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        cluster.check_running()
        done = await conn.fetchval("SELECT COUNT(*) FROM jobs WHERE status = 'done'")
        pending = await conn.fetchval("SELECT COUNT(*) FROM webhooks WHERE state = 'pending'")
        if done >= DONE_BEFORE_KILLS and pending == 0:
            running = await conn.fetch(
                "SELECT id, worker, started_at FROM jobs WHERE status = 'running'"
            )
            now = datetime.now(UTC)
            for row in running:
                age = (now - started(row)).total_seconds()
                victim = by_pid.get(pid_of(row["worker"]))
                if victim is not None and 0.1 <= age <= RENDER / 2:
                    victim.kill()
                    killed_at = time.monotonic()
                    held = await conn.fetchval(
                        "SELECT COUNT(*) FROM jobs WHERE id = $1 AND status = 'running'"
                        " AND worker = $2",
                        row["id"],
                        row["worker"],
                    )
                    assert held == 1, "the job ended before its worker was killed"
                    return victim, row["id"], row["worker"], killed_at
        await asyncio.sleep(0.02)
    raise AssertionError("no worker was seen mid-render with the outbox empty")


async def wait_for_takeover(
    conn: asyncpg.Connection, job_id: str, holder: str, killed_at: float
) -> tuple[float, float]:
    """Seconds from the kill until the job was back in the queue, and until it was claimed again."""
    requeued: float | None = None
    while (elapsed := time.monotonic() - killed_at) < LEASE + 30:
        row = await conn.fetchrow("SELECT status, worker, attempts FROM jobs WHERE id = $1", job_id)
        assert row is not None
        if requeued is None and row["worker"] != holder:
            requeued = elapsed
        if row["attempts"] >= 2 and row["status"] in ("running", "done"):
            return requeued or elapsed, elapsed
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} was not claimed again {LEASE + 30:.0f} s after the kill")


async def wait_delivered(receiver: Receiver, job_ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        hooks = receiver.by_job()
        missing = [j for j in job_ids if not any(b["status"] == "done" for _, b in hooks[j])]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"no webhook after {timeout:.0f} s for {missing}")
        await asyncio.sleep(0.1)


async def test_two_apis_three_workers_lose_a_worker_and_an_api_and_finish_every_job_once(
    pg_own_cluster: PgCluster, receiver: Receiver, tmp_path: Path
) -> None:
    database_url = pg_own_cluster.create_database("imagine")
    began = time.monotonic()
    with Cluster(tmp_path) as cluster:
        s3, api_a, api_b = await bring_up(cluster, database_url, RENDER)
        conn = await asyncpg.connect(database_url)
        try:
            async with aiohttp.ClientSession() as http:
                # all thirty queued before any worker runs: u0's ten first, then u1..u4's five
                owners: dict[str, str] = {}
                made_on: dict[str, Proc] = {}
                for user, count in USERS.items():
                    for n in range(count):
                        api = (api_a, api_b)[len(owners) % 2]
                        body = {"msg": f"{user}'s picture {n}", "ref": json.dumps({"user": user}),
                                "webhookOverride": receiver.url}  # fmt: skip
                        job_id = (await post(http, f"{api.url}/v2/imagine", body))["messageId"]
                        owners[job_id], made_on[job_id] = user, api
                job_ids = list(owners)
                # the workers' webhooks and messages point at the API that survives
                workers = [
                    cluster.worker(f"worker-{n}", IMAGINE_PUBLIC_URL=api_b.url) for n in range(3)
                ]
                victim, victim_job, holder, killed_at = await kill_a_busy_worker(
                    conn, cluster, workers
                )
                api_a.kill()
                api_a.reap()
                requeued, claimed = await wait_for_takeover(conn, victim_job, holder, killed_at)
                victim.reap()  # only now: a zombie's pid looks alive, so its lease had to run out
                print(
                    f"\nkilled {victim.name} rendering {victim_job}: back in the queue after "
                    f"{requeued:.2f} s, claimed again after {claimed:.2f} s (lease {LEASE:.0f} s)"
                )
                assert requeued < LEASE + 2  # the lease ran out, and a reaper saw it
                assert claimed < LEASE + 5  # and a worker took it, in its owner's turn

                finished = await wait_done(http, api_b, job_ids, cluster, timeout=60)
                not_done = {j: m for j, m in finished.items() if m["status"] != "done"}
                assert not not_done
                assert (
                    sum(made_on[j] is api_a for j in finished) == 15
                )  # made on the dead API, read on B

                # completed once: one delivery id per job (a repeat of that one is allowed)
                await wait_delivered(receiver, job_ids, timeout=30)
                await asyncio.sleep(1.0)  # room for a second completion to show up
                hooks = receiver.by_job()
                assert set(hooks) == set(job_ids)
                for job_id in job_ids:
                    keys = {key for key, _ in hooks[job_id]}
                    assert len(keys) == 1, (job_id, hooks[job_id])
                    assert "" not in keys
                    assert all(body["status"] == "done" for _, body in hooks[job_id])
                    assert json.loads(hooks[job_id][0][1]["ref"]) == {"user": owners[job_id]}

                # the images are in the bucket, and the surviving API serves them
                keys = await asyncio.to_thread(bucket_keys, s3.url, BUCKET)
                for job_id in job_ids:
                    folder = f"{PREFIX}/images/{job_id}/"
                    expected = {folder + name for name in ("grid.jpg", "0.png", "1.png", "2.png",
                                                           "3.png")}  # fmt: skip
                    assert expected <= keys, (job_id, sorted(k for k in keys if job_id in k))
                for done in finished.values():
                    assert done["imageUrl"].startswith(api_b.url + "/images/"), done["imageUrl"]
                    assert (await image(http, done["imageUrl"])).startswith(JPEG)
                    assert (await image(http, done["imageUrls"][0])).startswith(PNG)
                hooked = hooks[victim_job][0][1]
                assert hooked["imageUrl"].startswith(api_b.url + "/images/"), hooked["imageUrl"]
                assert (await image(http, hooked["imageUrl"])).startswith(JPEG)
                grid_key = f"{PREFIX}/images/{victim_job}/grid.jpg"
                stored = await asyncio.to_thread(s3_object, s3.url, BUCKET, grid_key)
                assert await image(http, finished[victim_job]["imageUrl"]) == stored

                # fair: every user's first job started before any user's second
                rows = await conn.fetch("SELECT id, owner, started_at, attempts FROM jobs")
                starts: dict[str, list[datetime]] = defaultdict(list)
                for row in rows:
                    if row["id"] != victim_job:  # its start was the rerun's
                        starts[row["owner"]].append(started(row))
                assert len(starts) == len(USERS)
                last_first = max(min(times) for times in starts.values())
                first_second = min(sorted(times)[1] for times in starts.values())
                assert last_first <= first_second + timedelta(seconds=STARTS_TOLERANCE), (
                    last_first,
                    first_second,
                )
                rerun = {row["id"]: row["attempts"] for row in rows if row["attempts"] != 1}
                assert rerun.get(victim_job) == 2
                print(
                    f"jobs started more than once: {rerun}; took {time.monotonic() - began:.1f} s"
                )
                survivors = [p for p in cluster.procs if not p.killed and not p.once]
                assert len(survivors) == 4  # S3, API B, two workers
                cluster.check_running()
        finally:
            await conn.close()


async def test_a_job_made_on_one_api_is_pressed_and_followed_on_the_other(
    pg_url: str, tmp_path: Path
) -> None:
    """Made on A; U1 and V1 pressed on B; the worker's progress on V1 shows through B."""
    with Cluster(tmp_path) as cluster:
        _, api_a, api_b = await bring_up(cluster, pg_url, render=2.5)
        cluster.worker("worker-0", IMAGINE_PUBLIC_URL=api_b.url)
        async with aiohttp.ClientSession() as http:
            made = await post(http, f"{api_a.url}/v2/imagine", {"msg": "a lighthouse at dusk"})
            [grid] = (await wait_done(http, api_b, [made["messageId"]], cluster, 30)).values()
            assert grid["status"] == "done"
            press = {"buttonMessageId": grid["buttonMessageId"], "button": "U1"}
            upscale = (await post(http, f"{api_b.url}/v2/button", press))["messageId"]
            [tile] = (await wait_done(http, api_b, [upscale], cluster, 30)).values()
            assert tile["status"] == "done"
            assert tile["button"] == "U1"
            assert (await image(http, tile["imageUrl"])).startswith(PNG)
            # the same tile pressed again, on the other instance: refused, pointing at the first
            async with http.post(f"{api_a.url}/v2/button", json=press) as response:
                again = await response.json()
                assert response.status == 409, again
                assert again["code"] == "ALREADY_REQUESTED_UPSCALE"
                assert again["messageId"] == upscale

            vary = {"buttonMessageId": grid["buttonMessageId"], "button": "V1"}
            variation = (await post(http, f"{api_b.url}/v2/button", vary))["messageId"]
            seen: list[Any] = []
            async with asyncio.timeout(30):
                while (progress := (await message(http, api_b, variation))["progress"]) != 100:
                    if not seen or seen[-1] != progress:
                        seen.append(progress)
                    await asyncio.sleep(0.05)
            assert any(isinstance(p, int) and 1 <= p <= 99 for p in seen), seen
            print(f"\nV1's progress as API B saw it: {seen}")
            [varied] = (await wait_done(http, api_b, [variation], cluster, 10)).values()
            assert varied["status"] == "done"
            assert varied["button"] == "V1"
            cluster.check_running()
