"""PostgreSQL going away: restarted, crashed or unreachable for a while. The API answers 503 with
a sentence and Retry-After (never a 500), workers and API reconnect by themselves, no accepted
job is lost, and the jobs in flight finish."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from imagine.engines.placeholder import PlaceholderEngine
from tests.infra.postgres import PgCluster
from tests.service.conftest import ClientFactory, submit, wait_done
from tests.service.processes import kill_9_mid_batch

pytestmark = pytest.mark.postgres


async def _during_outage(client: Any) -> None:
    """What a client sees while the database is down: 503, a sentence, Retry-After."""
    response = await client.post("/v2/imagine", json={"msg": "while it is down"})
    body = await response.json()
    assert response.status == 503, body
    assert "job database" in body["msg"]
    assert "Try again" in body["msg"]
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.slow
async def test_a_20_second_outage_costs_503s_and_no_job(
    make_client: ClientFactory, pg_own_cluster: PgCluster
) -> None:
    url = pg_own_cluster.create_database("imagine")
    client = await make_client(
        engine=PlaceholderEngine(seconds=4), database_url=url, lease_seconds=5, rate_per_user=0
    )
    in_flight = (await submit(client, "a lighthouse in flight"))["messageId"]
    waiting = (await submit(client, "a lighthouse that waits"))["messageId"]
    await asyncio.sleep(1.0)  # the first is rendering, the second queued
    outage = pg_own_cluster.pause_for(20.0)
    try:
        await asyncio.sleep(1.0)
        started = time.monotonic()
        while time.monotonic() - started < 15:
            await _during_outage(client)
            poll = await client.get(f"/v2/message/{waiting}")
            assert poll.status in (200, 503), await poll.text()  # never a 500
            if poll.status == 503:
                assert "Retry-After" in poll.headers
            await asyncio.sleep(1.0)
    finally:
        await asyncio.to_thread(outage.join)
    # back: everything accepted before the outage ends done, and new work is taken again
    for message_id in (in_flight, waiting):
        done = await wait_done(client, message_id, timeout=60)
        assert done["status"] == "done", done
    after = (await submit(client, "after the outage"))["messageId"]
    assert (await wait_done(client, after, timeout=30))["status"] == "done"
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT id, status FROM jobs")
    finally:
        await conn.close()
    assert sorted(status for _, status in rows) == ["done"] * 3


async def test_a_crashed_database_restarted_at_once_is_picked_up_again(
    make_client: ClientFactory, pg_own_cluster: PgCluster
) -> None:
    url = pg_own_cluster.create_database("imagine")
    # a claim cut off by the crash may have been committed unseen: its lease (5 s) runs out
    client = await make_client(
        engine=PlaceholderEngine(seconds=1), database_url=url, lease_seconds=5
    )
    first = (await submit(client, "before the crash"))["messageId"]
    pg_own_cluster.kill()
    await _during_outage(client)
    pg_own_cluster.restart()
    assert (await wait_done(client, first, timeout=30))["status"] == "done"
    again = (await submit(client, "after the crash"))["messageId"]
    assert (await wait_done(client, again, timeout=30))["status"] == "done"


async def test_kill_9_of_the_service_on_postgres_loses_nothing(tmp_path: Path, pg_url: str) -> None:
    """The SQLite durability test's twin: the same process restarted on the same host takes its
    dead jobs back at once (no lease to wait out), and runs nothing twice."""
    results, took = await kill_9_mid_batch(
        tmp_path, IMAGINE_DATABASE_URL=pg_url, IMAGINE_LEASE_SECONDS="60"
    )
    assert [r["status"] for r in results] == ["done"] * 4
    assert took < 30  # far sooner than the 60 s lease
    conn = await asyncpg.connect(pg_url)
    try:
        rows = await conn.fetch("SELECT status, attempts, finished_at FROM jobs ORDER BY seq")
    finally:
        await conn.close()
    assert [r["status"] for r in rows] == ["done"] * 4
    assert all(r["attempts"] <= 2 and r["finished_at"] for r in rows)
    assert rows[0]["attempts"] == 1
