"""One bot as two ``python -m bot`` processes: shards 0 and 1 of 2 (DISCORD_SHARD_COUNT,
DISCORD_SHARD_IDS), each with its own BOT_DATA_DIR, both on one remote image service.

Discord sends a server's events only to the shard that carries it, ``(guild_id >> 22) % count``;
so the process holding the server's shard answers /imagine, and the other, connected and ready,
never sees it. The fake Discord has one server: each test runs twice, once with either process
holding its shard, so that each process answers /imagine in a server of its own shard.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web

from tests.bot.stub_service import StubService, png_bytes
from tests.e2e.conftest import BotLauncher, BotProcess
from tests.e2e.screen import GRID_LABELS, finished_original, labels
from tests.fakediscord import FakeDiscord

pytestmark = pytest.mark.asyncio(loop_scope="module")

SHARDS = 2


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stub() -> AsyncIterator[StubService]:
    service = StubService()
    runner = web.AppRunner(service.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    service.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield service
    await runner.cleanup()


def data_dir(launcher: BotLauncher, name: str) -> Path:
    return launcher.home / f"bot-{name}"


def pending_jobs(launcher: BotLauncher, name: str) -> list[str]:
    with sqlite3.connect(data_dir(launcher, name) / "bot-pending.sqlite3") as db:
        return [row[0] for row in db.execute("SELECT job_id FROM pending")]


async def start_cluster(
    fake: FakeDiscord, launcher: BotLauncher, stub: StubService, holder: str
) -> dict[str, BotProcess]:
    """Processes "a" and "b", one shard each; ``holder`` gets the shard of the fake's server."""
    home = (int(fake.guild_id) >> 22) % SHARDS
    slices = {"a": home if holder == "a" else 1 - home, "b": home if holder == "b" else 1 - home}
    bots = {}
    for name, shard in slices.items():
        bots[name] = await launcher.start(
            DISCORD_SHARD_COUNT=str(SHARDS),
            DISCORD_SHARD_IDS=str(shard),
            BOT_DATA_DIR=str(data_dir(launcher, name)),
            IMAGINE_API_URL=stub.base_url,
            IMAGINE_API_TOKEN="remote",
        )
    return bots


def ready_guilds(
    fake: FakeDiscord, expected: int
) -> dict[tuple[int, int] | None, list[str]] | None:
    """The servers each live session's READY listed, by the session's (shard, count), once
    ``expected`` sessions have been sent theirs."""
    sessions = {s.id: s.shard for s in fake.gateway.live_sessions()}
    found = {
        sessions[entry["session_id"]]: [g["id"] for g in entry["payload"]["d"]["guilds"]]
        for entry in fake.gateway_log
        if entry["direction"] == "to_bot"
        and entry["session_id"] in sessions
        and entry["payload"].get("t") == "READY"
    }
    return found if len(found) == expected else None


@pytest.mark.parametrize("holder", ["a", "b"])
async def test_the_process_holding_the_servers_shard_answers_alone(
    fake: FakeDiscord, launcher: BotLauncher, stub: StubService, holder: str
) -> None:
    other = "b" if holder == "a" else "a"
    home = (int(fake.guild_id) >> 22) % SHARDS
    syncs_before = sum(
        1 for c in fake.calls if c["method"] == "PUT" and c["path"].endswith("/commands")
    )
    bots = await start_cluster(fake, launcher, stub, holder)
    try:
        # each process identified with its own shard; only the holder's READY lists the server
        ready = await fake.wait_for(lambda: ready_guilds(fake, expected=SHARDS))
        assert ready == {(home, SHARDS): [fake.guild_id], (1 - home, SHARDS): []}
        syncs = [c for c in fake.calls if c["method"] == "PUT" and c["path"].endswith("/commands")]
        assert len(syncs) == syncs_before + 1  # DISCORD_GUILD_IDS synced once, by the holder

        job_id = f"job{stub.counter + 1}"
        stub.states[job_id] = [{"progress": 0, "status": "queued", "queuePosition": 1}]
        prompt = f"a lighthouse drawn by bot {holder}"
        inter = await fake.slash("imagine", {"prompt": prompt})
        await fake.wait_for(lambda: pending_jobs(launcher, holder) == [job_id])
        assert pending_jobs(launcher, other) == []

        stub.finish(job_id, image=png_bytes((256, 256)))
        grid = await finished_original(fake, inter)
        assert labels(grid) == GRID_LABELS
        await fake.wait_for(lambda: not pending_jobs(launcher, holder))
        submitted = [r for r in stub.requests if r.path == "/v2/imagine"]
        assert sum(1 for r in submitted if prompt in (r.body or {}).get("msg", "")) == 1
    finally:
        codes = [await bot.stop() for bot in bots.values()]
    assert codes == [0, 0]
