"""For the Discord benchmarks: the real ``python -m bot`` (embedded service) against the tests' fake Discord."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakediscord import FakeDiscord  # noqa: E402


@contextlib.asynccontextmanager
async def running_bot(
    home: Path, **env: str
) -> AsyncIterator[tuple[FakeDiscord, asyncio.subprocess.Process]]:
    async with FakeDiscord(token="bench-token") as fake:
        home.mkdir(parents=True, exist_ok=True)
        (home / ".env").write_text(f"DISCORD_TOKEN={fake.token}\n")
        environ = {
            "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT),
            "DISCORD_API_BASE": fake.api_base, "DISCORD_GATEWAY_URL": fake.gateway_url,
            "DISCORD_GUILD_IDS": fake.guild_id, "IMAGINE_DATA_DIR": str(home / "data"),
            "IMAGINE_ENGINE": "placeholder",
            "BOT_GUILD_READY_TIMEOUT": "0.05", "BOT_LOG_LEVEL": "WARNING", **env,
        }  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=home, env=environ,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await fake.wait_for_session(1, 30)
            await fake.wait_for(lambda: fake.registered_commands(fake.guild_id), 30)
            yield fake, process
        finally:
            process.terminate()
            await process.wait()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")
