"""Leases and claims on both databases: a worker that lost its job writes nothing over the one
that has it now, a lost database connection is a sentence and not a crash, and a webhook is sent
by one claim at a time even when deliveries queue behind a slow receiver."""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image

from imagine import actions, webhooks
from imagine.engines.base import Capabilities, Engine, GenerateRequest, ProgressCallback
from imagine.engines.placeholder import PlaceholderEngine
from imagine.jobs import Job, JobStatus
from imagine.netguard import UrlPolicy
from imagine.previews import image_key
from imagine.prompt import parse
from imagine.runner import Runner
from imagine.storage import LocalStorage
from imagine.store import Fenced, JobStore, SQLiteStore, StoreUnavailable, open_store
from imagine.webhooks import IDEMPOTENCY_HEADER, WebhookSender
from imagine.workers import requeue
from tests.backends import on_both_databases as backend  # noqa: F401 (a fixture: every test on each)
from tests.infra.postgres import PgCluster


def _job(job_id: str) -> Job:
    return Job(id=job_id, button_message_id=f"b-{job_id}", action="imagine", type="imagine",
               owner="o", content="c", prompt=parse("a lighthouse")[0].to_dict(),
               result={"seeds": [1, 2, 3, 4]})  # fmt: skip


async def _taken_over(store: JobStore, job_id: str) -> tuple[Any, Any]:
    """w1 claims the job, loses it (its lease ran out and the job was given back), w2 claims it."""
    await store.add([_job(job_id)])
    first = await store.claim("w1", 30)
    assert first is not None
    job, lease1 = first
    assert await requeue(store, job, lease1)
    second = await store.claim("w2", 30)
    assert second is not None
    return first, second


@pytest.fixture
async def store(settings: Any) -> Any:
    opened = await open_store(settings)
    yield opened
    await opened.close()


async def test_a_writer_whose_lease_was_lost_is_fenced_off(store: JobStore) -> None:
    (job1, lease1), (_, lease2) = await _taken_over(store, "j1")
    job1.status = JobStatus.DONE
    with pytest.raises(Fenced):
        await store.save(job1, JobStatus.RUNNING, lease=lease1)
    with pytest.raises(Fenced):  # nor without any lease: a held job needs its holder's
        await store.save(job1, JobStatus.RUNNING)
    assert not await store.renew("j1", lease1, 30, 0.5, None)
    assert await store.renew("j1", lease2, 30, 0.5, None)
    current = await store.get("j1")
    assert current is not None
    assert (current.status, current.attempts, current.progress) == (JobStatus.RUNNING, 2, 0.5)


class Hanging(Engine):
    """Never answers (a remote engine that hung): only the job timeout ends it."""

    capabilities = Capabilities(name="hanging")

    async def generate(
        self, request: GenerateRequest, progress: ProgressCallback
    ) -> list[Image.Image]:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def upscale(
        self, image: Image.Image, factor: int, progress: ProgressCallback
    ) -> Image.Image:
        raise AssertionError("unreachable")


async def test_a_timeout_after_the_lease_was_lost_leaves_the_new_holder_alone(
    store: JobStore, tmp_path: Path
) -> None:
    """The late worker's job times out: it must not fail the job under the new holder, nor
    delete the images the new holder is writing."""
    (job1, lease1), (_, lease2) = await _taken_over(store, "j2")
    storage = LocalStorage(tmp_path / "images")
    await storage.put(image_key("j2", "0.png"), b"the new holder's tile", "image/png")
    context = actions.PlanContext(Hanging.capabilities, {}, None)
    late = Runner(store, Hanging(), storage, context, timeout=0.3)
    await late.run(job1, lease1)
    current = await store.get("j2")
    assert current is not None
    assert current.status is JobStatus.RUNNING
    assert current.attempts == 2
    assert await storage.get(image_key("j2", "0.png")) == b"the new holder's tile"
    assert await store.renew("j2", lease2, 30, 0.1, None)  # still w2's


async def test_fifty_workers_claiming_at_once_take_each_job_once(store: JobStore) -> None:
    await store.add([_job(f"c{n}") for n in range(20)])
    claimed = await asyncio.gather(*(store.claim(f"w{n}", 30) for n in range(50)))
    taken = [c[0].id for c in claimed if c is not None]
    assert sorted(taken) == sorted(f"c{n}" for n in range(20))


@pytest.mark.postgres
async def test_calls_cut_off_by_a_crashed_postgres_are_sentences(
    pg_own_cluster: PgCluster,
) -> None:
    from imagine.store.postgres import PostgresStore

    store = await PostgresStore.open(pg_own_cluster.create_database("imagine"))
    try:
        calls = [asyncio.create_task(store.fetch("SELECT pg_sleep(2)")) for _ in range(10)]
        await asyncio.sleep(0.5)
        pg_own_cluster.kill()
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(r, StoreUnavailable) for r in results), results
        assert "cannot be reached" in str(results[0])
        pg_own_cluster.restart()
        assert (await store.fetch("SELECT 1"))[0][0] == 1  # the pool reconnects by itself
    finally:
        await store.close()


class SlowReceiver:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.keys: list[str] = []
        app = web.Application()
        app.router.add_post("/hook", self.hook)
        self.server = TestServer(app, host="127.0.0.1")

    async def hook(self, request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(self.delay)
        self.keys.append(request.headers[IDEMPOTENCY_HEADER])
        return web.Response(text="ok")


async def test_deliveries_queued_behind_a_slow_receiver_go_out_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two senders (two processes' worth) on one database, 12 deliveries to one origin that
    takes 4 at a time, each slower than a claim's hold: every delivery is sent exactly once."""
    monkeypatch.setattr(webhooks, "HOLD", -1.5)  # a claim holds for HOLD + timeout = 0.5 s
    receiver = SlowReceiver(delay=0.4)
    await receiver.server.start_server()
    path = tmp_path / "jobs.sqlite3"
    stores = [await SQLiteStore.open(path), await SQLiteStore.open(path)]
    senders = [
        WebhookSender(s, secret="", delays=(1.0,), policy=UrlPolicy(True), timeout=2.0)
        for s in stores
    ]
    tasks = []
    try:
        url = str(receiver.server.make_url("/hook"))
        for n in range(12):
            job = _job(f"h{n}")
            await stores[0].add([job])
            job.status = JobStatus.DONE
            await stores[0].save(job, JobStatus.QUEUED, (url, b"{}", 0.0))
        tasks = [asyncio.create_task(sender.run()) for sender in senders]
        async with asyncio.timeout(30):
            while len(receiver.keys) < 12:
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)  # room for a second send, were there one
        assert sorted(collections.Counter(receiver.keys).values()) == [1] * 12
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for s in stores:
            await s.close()
        await receiver.server.close()


async def test_a_placeholder_job_still_finishes_under_its_lease(
    store: JobStore, tmp_path: Path
) -> None:
    """The happy path of the same pieces, so the tests above cannot pass by breaking it."""
    await store.add([_job("ok")])
    claimed = await store.claim("w", 30)
    assert claimed is not None
    engine = PlaceholderEngine()
    context = actions.PlanContext(engine.capabilities, {}, None)
    runner = Runner(store, engine, LocalStorage(tmp_path / "images"), context, timeout=30)
    await runner.run(*claimed)
    done = await store.get("ok")
    assert done is not None
    assert done.status is JobStatus.DONE


async def test_an_api_instance_offers_what_the_workers_engine_can_do(
    make_client: Any,
) -> None:
    """An API instance alone loads no model: it learns what the engine can do from the workers'
    heartbeats, so a U1 copy it makes offers only the buttons the workers can carry out."""
    import dataclasses

    worker_engine = PlaceholderEngine()
    worker_engine._capabilities = dataclasses.replace(
        worker_engine.capabilities, outpaint=False, upscaler="the workers' upscaler"
    )

    def guessing() -> PlaceholderEngine:  # like the diffusers engine before its model loads
        engine = PlaceholderEngine()
        engine._capabilities = dataclasses.replace(engine.capabilities, known_before_start=False)
        return engine

    api = await make_client(engine=guessing(), workers=0)
    # asked before any worker has said what it can do: its own guess, and no wait to learn
    early = await (await api.get("/v2/info")).json()
    assert early["capabilities"]["upscaler"] != "the workers' upscaler"
    worker = await make_client(engine=worker_engine)
    try:
        accepted = await (await api.post("/v2/imagine", json={"msg": "a lighthouse"})).json()
        async with asyncio.timeout(20):
            while (done := await (await api.get(f"/v2/message/{accepted['messageId']}")).json())[
                "progress"
            ] != 100:
                await asyncio.sleep(0.05)
        info = await (await api.get("/v2/info")).json()
        assert info["capabilities"]["upscaler"] == "the workers' upscaler"
        assert info["workers"] == 1
        pressed = await api.post(
            "/v2/button",
            json={"buttonMessageId": done["response"]["buttonMessageId"], "button": "U1"},
        )
        upscale_id = (await pressed.json())["messageId"]
        async with asyncio.timeout(20):
            while (single := await (await api.get(f"/v2/message/{upscale_id}")).json())[
                "progress"
            ] != 100:
                await asyncio.sleep(0.05)
        buttons = single["response"]["buttons"]
        assert "Vary (Strong)" in buttons
        assert not [b for b in buttons if b.startswith("Zoom") or b in ("⬅️", "Make Square")]
    finally:
        await worker.close()
    # the workers are gone: an API instance started now still offers what they could do
    later = await make_client(engine=guessing(), workers=0)
    info = await (await later.get("/v2/info")).json()
    assert info["capabilities"]["upscaler"] == "the workers' upscaler"
    assert info["workers"] == 0


async def test_a_stop_that_lands_mid_claim_runs_the_claimed_job(tmp_path: Path) -> None:
    """The claim is committed (clients see the job running) but has not returned when the stop
    begins: the worker must run the job within the grace, not be cancelled and leave it
    running in the database (found by CI: SIGINT right after a submission)."""
    from imagine.settings import Settings
    from imagine.workers import WorkerPool

    claimed = asyncio.Event()
    release = asyncio.Event()

    class SlowToAnswer(SQLiteStore):
        async def claim(self, *args: Any, **kwargs: Any) -> Any:
            result = await super().claim(*args, **kwargs)
            if result is not None:
                claimed.set()
                await release.wait()
            return result

    store = await SlowToAnswer.open(tmp_path / "jobs.sqlite3")
    engine = PlaceholderEngine()
    runner = Runner(store, engine, LocalStorage(tmp_path / "images"),
                    actions.PlanContext(engine.capabilities, {}, None), timeout=30)  # fmt: skip
    pool = WorkerPool(Settings(environ={}), store, runner, 1)
    try:
        pool.start()
        await store.add([_job("mid")])
        pool.wake()
        async with asyncio.timeout(10):
            await claimed.wait()
        stopping = asyncio.create_task(pool.drain(10))
        await asyncio.sleep(0.1)
        release.set()
        async with asyncio.timeout(10):
            await stopping
        done = await store.get("mid")
        assert done is not None
        assert done.status is JobStatus.DONE
    finally:
        await pool.close()
        await store.close()
