"""The service as a real process: ``python -m imagine serve`` on a free loopback port."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def serve(
    data_dir: Path, port: int, *, capture: bool = False, **env: str
) -> asyncio.subprocess.Process:
    """Start the service on ``data_dir`` with no tokens and the given IMAGINE_* settings, and wait
    until /health answers. ``capture``: its stdout and stderr go to ``process.stdout``."""
    output = asyncio.subprocess.PIPE if capture else asyncio.subprocess.DEVNULL
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "imagine", "serve",
        env={**os.environ, "IMAGINE_DATA_DIR": str(data_dir), "IMAGINE_PORT": str(port),
             "IMAGINE_API_TOKENS": "", **env},
        stdout=output, stderr=asyncio.subprocess.STDOUT if capture else output,
    )  # fmt: skip
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(f"http://127.0.0.1:{port}/health") as response:
                    if response.status == 200:
                        return process
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    process.kill()
    await process.wait()
    raise AssertionError("the service did not start")


async def kill_9_mid_batch(data_dir: Path, **env: str) -> tuple[list[dict[str, Any]], float]:
    """Four jobs of 1 s each; ``kill -9`` while the second renders; a restart on the same data
    (and ``env``) with fast jobs. The four completed messages, and the seconds from the restart
    until the last was done."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = await serve(data_dir, port, IMAGINE_PLACEHOLDER_SECONDS="1", **env)
    async with aiohttp.ClientSession() as session:
        ids = []
        for n in range(4):
            async with session.post(f"{base}/v2/imagine", json={"msg": f"batch {n}"}) as response:
                ids.append((await response.json())["messageId"])
        await asyncio.sleep(1.4)  # the first is done, the second is running
        process.send_signal(signal.SIGKILL)
        await process.wait()
        restarted = time.monotonic()
        process = await serve(data_dir, port, IMAGINE_PLACEHOLDER_SECONDS="0.05", **env)
        try:
            results: list[dict[str, Any]] = []
            for message_id in ids:
                for _ in range(400):
                    async with session.get(f"{base}/v2/message/{message_id}") as response:
                        data = await response.json()
                    if data["progress"] == 100:
                        results.append(data["response"])
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError(f"{message_id} did not finish after the restart")
            return results, time.monotonic() - restarted
        finally:
            process.terminate()
            await process.wait()
