"""Bursts on the SQLite store: every submission of a burst is answered, and each one answered is
on disk (a kill -9 right after the last answer loses none); the reads and commits that go over
to the database's thread together still succeed and fail one by one."""

from __future__ import annotations

import asyncio
import shutil
import signal
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from imagine.jobs import Job, JobStatus
from imagine.store import SQLiteStore, StoreUnavailable, checkpoints
from imagine.store.base import Tx, Unit, job_values
from tests.service.processes import free_port, serve


def _job(job_id: str) -> Job:
    return Job(id=job_id, button_message_id=f"b-{job_id}", action="imagine", type="imagine",
               owner="o", content="c", prompt={})  # fmt: skip


def _ids_in(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {str(row[0]) for row in db.execute("SELECT id FROM jobs")}


def _holds(path: Path, job_id: str) -> bool:
    try:
        return job_id in _ids_in(path)
    except sqlite3.DatabaseError:  # copied halfway through a checkpoint's writes: not yet
        return False


async def test_200_at_once_are_all_answered_and_all_on_disk_at_a_kill_9(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = await serve(
        tmp_path, port, IMAGINE_PLACEHOLDER_SECONDS="3600", IMAGINE_QUEUE_LIMIT="1000"
    )
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as session:

            async def one(n: int) -> tuple[int, dict[str, Any]]:
                body = {"msg": f"a lighthouse {n}"}
                async with session.post(f"{base}/v2/imagine", json=body) as response:
                    return response.status, await response.json()

            answers = await asyncio.gather(*(one(n) for n in range(200)))
    finally:
        process.send_signal(signal.SIGKILL)  # at once: no orderly stop, no final checkpoint
        await process.wait()
    assert [status for status, _ in answers] == [200] * 200
    accepted = {body["messageId"] for _, body in answers}
    assert len(accepted) == 200
    assert accepted <= _ids_in(tmp_path / "jobs.sqlite3")


async def test_reads_that_go_together_each_get_their_own_answer(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "jobs.sqlite3")
    try:
        await asyncio.gather(*(store.add([_job(f"j{n}")]) for n in range(50)))
        reads: list[Any] = [store.get(f"j{n}") for n in range(50)]
        reads.insert(25, store.fetch("SELECT id FROM no_such_table"))
        reads.append(store.get("missing"))
        results = await asyncio.gather(*reads, return_exceptions=True)
        assert isinstance(results.pop(25), StoreUnavailable)  # this read alone fails
        assert results.pop() is None
        assert [job.id for job in results] == [f"j{n}" for n in range(50)]
        assert {job.status for job in results} == {JobStatus.QUEUED}
    finally:
        await store.close()


async def test_a_write_whose_work_waits_on_anything_else_is_refused_and_rolled_back(
    tmp_path: Path,
) -> None:
    """A unit's work runs on the database's thread to its end: it may await its transaction
    only. One that awaits something else fails, and its rows are not kept."""
    store = await SQLiteStore.open(tmp_path / "jobs.sqlite3")

    async def waits(tx: Tx) -> None:
        await asyncio.sleep(0)

    try:
        with pytest.raises(StoreUnavailable):
            await store.commit(Unit(waits, [job_values(_job("kept-not"))]))
        assert await store.get("kept-not") is None
        await store.add([_job("after")])  # the store goes on
        assert await store.get("after") is not None
    finally:
        await store.close()


async def test_the_wal_is_copied_into_the_database_file_by_the_checkpointer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer's connection never checkpoints (that is what made a commit slow); the
    checkpointer's does, so the database file alone comes to hold the committed jobs."""
    monkeypatch.setattr(checkpoints, "CHECKPOINT_SECONDS", 0.0)
    path = tmp_path / "jobs.sqlite3"
    store = await SQLiteStore.open(path)
    try:
        await store.add([_job("first")])
        copy = tmp_path / "copy" / "jobs.sqlite3"
        copy.parent.mkdir()
        for n in range(200):
            await store.add([_job(f"more-{n}")])  # each commit may start a checkpoint
            shutil.copyfile(path, copy)  # the database file without its WAL
            if _holds(copy, "first"):
                break
            copy.unlink()
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the WAL was never checkpointed into the database file")
    finally:
        await store.close()


async def test_the_wal_starts_over_under_steady_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checkpoints made beside a writer never find the whole WAL copied; the writer's thread
    copies what is left, so the WAL file stays small however long the writes go on."""
    monkeypatch.setattr(checkpoints, "CHECKPOINT_SECONDS", 0.0)
    monkeypatch.setattr(checkpoints, "RESTART_FRAMES", 50)
    path = tmp_path / "jobs.sqlite3"
    store = await SQLiteStore.open(path)
    try:
        for n in range(300):  # about 19 pages of WAL each: 23 MB if it never started over
            await asyncio.gather(*(store.add([_job(f"j{n}-{k}")]) for k in range(30)))
        wal = path.with_name("jobs.sqlite3-wal").stat().st_size
        assert wal < 8 * 1024 * 1024
        assert len(_ids_in(path)) == 9000
    finally:
        await store.close()
