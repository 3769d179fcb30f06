"""``python -m imagine serve`` as a supervised service: SIGTERM lets a running job finish within
IMAGINE_SHUTDOWN_GRACE and exits 0; what cannot finish stays resumable. Its log lines cannot be
forged by what users send."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.service.processes import free_port, serve


async def _serve(data: Path, port: int, **env: str) -> asyncio.subprocess.Process:
    return await serve(data, port, capture=True, IMAGINE_RATE_PER_USER="0", **env)


async def _status(session: aiohttp.ClientSession, base: str, job_id: str) -> dict[str, Any]:
    async with session.get(f"{base}/v2/message/{job_id}") as response:
        data: dict[str, Any] = await response.json()
        return data


def _row(data: Path, job_id: str) -> tuple[str, int]:
    with sqlite3.connect(data / "jobs.sqlite3") as db:
        [(status, attempts)] = db.execute(
            "SELECT status, attempts FROM jobs WHERE id = ?", (job_id,)
        ).fetchall()
    return str(status), int(attempts)


async def _submit(session: aiohttp.ClientSession, base: str, msg: str, ref: str = "") -> str:
    async with session.post(f"{base}/v2/imagine", json={"msg": msg, "ref": ref}) as response:
        assert response.status == 200, await response.text()
        return str((await response.json())["messageId"])


async def _until_running(session: aiohttp.ClientSession, base: str, job_id: str) -> None:
    async with asyncio.timeout(20):
        while (await _status(session, base, job_id)).get("status") != "running":
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_lets_the_running_job_finish_then_exits_0(
    tmp_path: Path, signum: signal.Signals
) -> None:
    port, base = free_port(), ""
    base = f"http://127.0.0.1:{port}"
    process = await _serve(tmp_path, port, IMAGINE_PLACEHOLDER_SECONDS="2")
    async with aiohttp.ClientSession() as session:
        running = await _submit(session, base, "a slow lighthouse")
        waiting = await _submit(session, base, "a waiting boat")
        await _until_running(session, base, running)
        process.send_signal(signum)
        await asyncio.sleep(0.3)
        async with session.post(f"{base}/v2/imagine", json={"msg": "too late"}) as refused:
            body = await refused.json()
            assert refused.status == 503, body
            assert "shutting down" in body["msg"]
            assert refused.headers["Retry-After"]
        async with asyncio.timeout(15):
            code = await process.wait()
    output = (await process.stdout.read()).decode() if process.stdout else ""
    assert code == 0, output
    assert "Traceback" not in output
    assert _row(tmp_path, running) == ("done", 1)  # finished within the grace period
    assert _row(tmp_path, waiting)[0] == "queued"  # not started: it waits for the next start


async def test_a_job_longer_than_the_grace_stays_resumable(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = await _serve(
        tmp_path, port, IMAGINE_PLACEHOLDER_SECONDS="60", IMAGINE_SHUTDOWN_GRACE="1"
    )
    async with aiohttp.ClientSession() as session:
        job = await _submit(session, base, "a very slow lighthouse")
        await _until_running(session, base, job)
        started = asyncio.get_running_loop().time()
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            code = await process.wait()
        assert code == 0
        assert asyncio.get_running_loop().time() - started < 8
        assert _row(tmp_path, job) == ("running", 1)  # interrupted, to be resumed

        process = await _serve(tmp_path, port, IMAGINE_PLACEHOLDER_SECONDS="0.05")
        try:
            async with asyncio.timeout(20):
                while (await _status(session, base, job))["progress"] != 100:
                    await asyncio.sleep(0.05)
            assert (await _status(session, base, job))["response"]["status"] == "done"
        finally:
            process.terminate()
            await process.wait()
    assert _row(tmp_path, job) == ("done", 2)


async def test_what_users_send_cannot_forge_log_lines(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = await _serve(tmp_path, port)
    forged = "FORGED 2026-01-01 00:00:00,000 INFO imagine: all is well"
    try:
        async with aiohttp.ClientSession() as session:
            job = await _submit(
                session, base, "a cat", ref=json.dumps({"user": f"u1\r\n{forged}\n{forged}"})
            )
            async with asyncio.timeout(20):
                while (await _status(session, base, job))["progress"] != 100:
                    await asyncio.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()
    output = (await process.stdout.read()).decode() if process.stdout else ""
    assert "u1\\r\\nFORGED" in output  # the user's text is there, escaped, on its own line
    assert not [line for line in output.splitlines() if line.startswith("FORGED")]
