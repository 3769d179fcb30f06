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
        # back in the queue, and an orderly stop does not count as one of its 3 attempts
        assert _row(tmp_path, job) == ("queued", 0)

        process = await _serve(tmp_path, port, IMAGINE_PLACEHOLDER_SECONDS="0.05")
        try:
            async with asyncio.timeout(20):
                while (await _status(session, base, job))["progress"] != 100:
                    await asyncio.sleep(0.05)
            assert (await _status(session, base, job))["response"]["status"] == "done"
        finally:
            process.terminate()
            await process.wait()
    assert _row(tmp_path, job) == ("done", 1)


async def test_graceful_stops_never_use_up_a_jobs_attempts(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    slow = {"IMAGINE_PLACEHOLDER_SECONDS": "60", "IMAGINE_SHUTDOWN_GRACE": "0"}
    async with aiohttp.ClientSession() as session:
        process = await _serve(tmp_path, port, **slow)
        job = await _submit(session, base, "a lighthouse stopped four times")
        for _ in range(4):  # max_attempts is 3: a fourth start used to give the job up
            await _until_running(session, base, job)
            process.send_signal(signal.SIGTERM)
            assert await process.wait() == 0
            process = await _serve(tmp_path, port, **slow)
        assert (await _status(session, base, job)).get("status") in ("queued", "running")
        process.send_signal(signal.SIGTERM)
        await process.wait()


async def test_malformed_http_is_one_log_line_without_a_traceback(tmp_path: Path) -> None:
    port = free_port()
    process = await _serve(tmp_path, port)
    try:
        for request in (
            b"GET /health HTTP/1.1\r\nHost: a\r\nX-Big: " + b"y" * 10000 + b"\r\n\r\n",
            b"GET /v2/info?user=" + b"x" * 10000 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
            b"POST /v2/imagine HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            await writer.drain()
            answer = await reader.read()
            writer.close()
            assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request"), answer[:80]
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()
    output = (await process.stdout.read()).decode() if process.stdout else ""
    assert "Traceback" not in output
    assert output.count("refused a malformed HTTP request") == 3


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
