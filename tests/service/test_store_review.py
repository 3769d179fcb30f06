"""The SQLite store's thread, found wanting under review: reads still queued when the store
closes, a write lock another connection holds past busy_timeout, and a unit that fails inside a
group commit."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from imagine.jobs import Job
from imagine.store import SQLiteStore, StoreUnavailable, checkpoints, sqlite
from imagine.store.base import Tx, Unit, job_values


def _job(job_id: str) -> Job:
    return Job(id=job_id, button_message_id=f"b-{job_id}", action="imagine", type="imagine",
               owner="o", content="c", prompt={})  # fmt: skip


async def test_reads_queued_when_the_store_closes_fail_as_unavailable(tmp_path: Path) -> None:
    """A read still waiting for its batch when the store closes (a request in flight at a
    shutdown) is told the database is unavailable, like a write, not handed a raw sqlite3
    ProgrammingError (a 500 with a traceback)."""
    store = await SQLiteStore.open(tmp_path / "jobs.sqlite3")
    await store.add([_job("j")])
    reads = [asyncio.ensure_future(store.get("j")) for _ in range(200)]
    await asyncio.sleep(0)  # the first batch is on the thread, the rest wait for it
    await store.close()
    late = [asyncio.ensure_future(store.get("j")) for _ in range(5)]
    async with asyncio.timeout(10):  # none is left waiting
        results = await asyncio.gather(*reads, *late, return_exceptions=True)
    for result in results:
        assert isinstance(result, Job | StoreUnavailable), repr(result)
    with pytest.raises(StoreUnavailable):
        await store.get("j")


async def test_a_write_lock_held_past_busy_timeout_fails_the_group_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds the write lock for longer than busy_timeout: the group's BEGIN
    failed before any unit ran, so every unit is told at once. Retried one by one, each waited
    busy_timeout again, and the writes and reads queued behind them with it (30 writes: 30×)."""
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT_MS", 200)
    path = tmp_path / "jobs.sqlite3"
    store = await SQLiteStore.open(path)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        await store.add([_job("first")])
        other.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        results = await asyncio.gather(
            *(store.add([_job(f"x{n}")]) for n in range(30)), return_exceptions=True
        )
        elapsed = time.monotonic() - started
        assert all(isinstance(r, StoreUnavailable) for r in results), results
        assert "locked" in str(results[0])
        assert elapsed < 3.0, f"30 writes took {elapsed:.1f} s against a 0.2 s busy_timeout"
        other.execute("COMMIT")
        await store.add([_job("after")])  # the lock is back: writes go again
        assert await store.get("after") is not None
    finally:
        other.close()
        await store.close()


async def test_a_unit_that_fails_in_a_group_is_rolled_back_alone(tmp_path: Path) -> None:
    """Its own rows and its half-done work are undone; the others of its group are kept."""
    store = await SQLiteStore.open(tmp_path / "jobs.sqlite3")

    async def fails(tx: Tx) -> None:
        await tx.execute("UPDATE jobs SET progress = 50")
        raise ValueError("a unit's own failure")

    try:
        commits: list[Any] = [
            store.commit(Unit(None, [job_values(_job(f"a{n}"))])) for n in range(10)
        ]
        commits.insert(5, store.commit(Unit(fails, [job_values(_job("bad"))])))
        results = await asyncio.gather(*commits, return_exceptions=True)
        assert isinstance(results.pop(5), StoreUnavailable)
        assert results == [None] * 10
        assert await store.get("bad") is None
        jobs = [await store.get(f"a{n}") for n in range(10)]
        assert [job.progress for job in jobs if job] == [0] * 10
    finally:
        await store.close()


@pytest.mark.slow
async def test_the_wal_starts_over_with_two_stores_writing_to_one_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes' worth of stores on one file, both writing all along (which the README
    allows). The copy on the writer's thread must hold the write lock: with PASSIVE the other
    store's commits landed while it copied, the WAL was never all copied, never started over,
    and grew without bound (1 GB in 30 s with two real processes)."""
    monkeypatch.setattr(checkpoints, "CHECKPOINT_SECONDS", 0.0)
    monkeypatch.setattr(checkpoints, "RESTART_FRAMES", 100)
    path = tmp_path / "jobs.sqlite3"
    wal = path.with_name("jobs.sqlite3-wal")
    stores = [await SQLiteStore.open(path), await SQLiteStore.open(path)]
    largest = 0
    try:

        async def writes(store: SQLiteStore, tag: str) -> int:
            nonlocal largest
            groups, until = 0, time.monotonic() + 6
            while time.monotonic() < until:
                await asyncio.gather(*(store.add([_job(f"{tag}{groups}-{k}")]) for k in range(20)))
                groups += 1
                largest = max(largest, wal.stat().st_size)
            return groups

        counts = await asyncio.gather(writes(stores[0], "a"), writes(stores[1], "b"))
        assert largest < 8 * 1024 * 1024, f"the WAL reached {largest >> 20} MiB"
        assert await stores[0].count_waiting() == 20 * sum(counts)
    finally:
        for store in stores:
            await store.close()
