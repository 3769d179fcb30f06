"""No accepted job is lost: a restart — graceful or kill -9 — resumes queued and interrupted jobs."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from imagine.engines.placeholder import PlaceholderEngine
from imagine.settings import Settings
from tests.backends import on_both_databases as backend  # noqa: F401 (a fixture: every test on each)
from tests.service.conftest import ClientFactory, submit, wait_done
from tests.service.processes import kill_9_mid_batch


async def test_graceful_restart_resumes_running_and_queued_jobs(make_client: ClientFactory) -> None:
    client = await make_client(engine=PlaceholderEngine(seconds=1.5))
    ids = [(await submit(client, f"job {n}"))["messageId"] for n in range(3)]
    await asyncio.sleep(0.4)
    status = await (await client.get(f"/v2/message/{ids[0]}")).json()
    assert status["status"] == "running"
    await client.close()  # the service stops with one job running and two queued

    client = await make_client(engine=PlaceholderEngine(seconds=0.1))
    for message_id in ids:
        done = await wait_done(client, message_id)
        assert done["status"] == "done"
        assert len(done["imageUrls"]) == 4


async def test_a_job_interrupted_too_often_fails_with_a_code(
    make_client: ClientFactory, settings: Settings
) -> None:
    client = await make_client(engine=PlaceholderEngine(seconds=5), max_attempts=1)
    message_id = (await submit(client, "doomed"))["messageId"]
    await asyncio.sleep(0.3)
    await client.close()
    client = await make_client(max_attempts=1)
    done = await wait_done(client, message_id)
    assert done["status"] == "failed"
    assert done["content"] == "INTERNAL_ERROR"
    assert done["buttons"] == []
    assert done["imageUrl"] is None


async def test_kill_9_mid_batch_loses_nothing_and_runs_nothing_twice(tmp_path: Path) -> None:
    results, _ = await kill_9_mid_batch(tmp_path)
    assert [r["status"] for r in results] == ["done"] * 4
    assert len({r["buttonMessageId"] for r in results}) == 4
    # every job started at most twice (once before the kill, once after) and finished exactly once
    with sqlite3.connect(tmp_path / "jobs.sqlite3") as db:
        rows = db.execute(
            "SELECT id, status, attempts, finished_at FROM jobs ORDER BY rowid"
        ).fetchall()
    assert len(rows) == 4
    assert all(
        status == "done" and attempts <= 2 and finished for _, status, attempts, finished in rows
    )
    assert rows[0][2] == 1  # done before the kill: not run again


async def test_one_failing_write_does_not_fail_the_others_committed_with_it(
    settings: Settings,
) -> None:
    from imagine.jobs import Job, JobStatus
    from imagine.store import SQLiteStore

    store = await SQLiteStore.open(settings.data_dir / "jobs.sqlite3")
    try:

        def job(job_id: str) -> Job:
            return Job(id=job_id, button_message_id=f"b-{job_id}", action="imagine", type="imagine",
                       owner="o", content="c", prompt={})  # fmt: skip

        await store.add([job("one")])
        # the same id again violates the primary key; the write batched with it must still land
        results = await asyncio.gather(
            store.add([job("one")]), store.add([job("two")]), return_exceptions=True
        )
        assert isinstance(results[0], Exception)
        assert results[1] is None
        assert (await store.get("two")) is not None
        assert (await store.get("one")).status is JobStatus.QUEUED  # type: ignore[union-attr]
    finally:
        await store.close()
