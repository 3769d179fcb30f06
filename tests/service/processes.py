"""The service as a real process: ``python -m imagine serve`` on a free loopback port."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

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
