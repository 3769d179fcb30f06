"""Self-tests of the PostgreSQL fixtures: a database per test, and a cluster that survives a crash."""

from __future__ import annotations

import time

import asyncpg
import pytest

from tests.infra.postgres import PgCluster


async def test_pg_url_is_a_fresh_database(pg_url: str, pg_cluster: PgCluster) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT 1") == 1
        assert await conn.fetchval("SELECT current_database()") == pg_url.rsplit("/", 1)[1]
        assert (
            await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
        )
    finally:
        await conn.close()
    assert pg_url.startswith(f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/t_")


def test_drop_database_ends_open_sessions(pg_cluster: PgCluster) -> None:
    url = pg_cluster.create_database("t_self_test_drop")
    assert pg_cluster.psql("SELECT 1", "t_self_test_drop").strip() == "1"
    pg_cluster.drop_database("t_self_test_drop")
    assert url.endswith("/t_self_test_drop")
    assert (
        pg_cluster.psql(
            "SELECT count(*) FROM pg_database WHERE datname = 't_self_test_drop'"
        ).strip()
        == "0"
    )


@pytest.mark.postgres
async def test_committed_rows_survive_a_crash(pg_own_cluster: PgCluster) -> None:
    url = pg_own_cluster.url()
    conn = await asyncpg.connect(url)
    await conn.execute("CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')")
    idle = await asyncpg.connect(url)  # a backend that is busy with nothing when the server dies

    pg_own_cluster.kill()
    began = time.monotonic()
    with pytest.raises(OSError):  # refused at once: nothing listens on the port
        await asyncpg.connect(url, timeout=5)
    assert time.monotonic() - began < 2
    conn.terminate()
    idle.terminate()

    pg_own_cluster.restart()
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetch("SELECT v FROM t") == [("kept",)]
    finally:
        await conn.close()


@pytest.mark.postgres
async def test_pause_for_brings_the_server_back(pg_own_cluster: PgCluster) -> None:
    thread = pg_own_cluster.pause_for(0.5)
    with pytest.raises(OSError):
        await asyncpg.connect(pg_own_cluster.url(), timeout=5)
    thread.join(30)
    conn = await asyncpg.connect(pg_own_cluster.url())
    try:
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()
