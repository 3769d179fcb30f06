"""A remote image service (IMAGINE_API_URL) whose workers are dead: it accepts jobs and leaves
them queued. The user is told so in the job's message, and the job is kept and delivered when
the service starts it at last."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web

from tests.bot.stub_service import StubService, png_bytes
from tests.e2e.conftest import BotLauncher, BotProcess
from tests.e2e.screen import GRID_LABELS, TIMEOUT, finished_original, labels, saying
from tests.fakediscord import FakeDiscord

pytestmark = pytest.mark.asyncio(loop_scope="module")


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


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(launcher: BotLauncher, stub: StubService) -> BotProcess:
    return await launcher.start(
        IMAGINE_API_URL=stub.base_url, IMAGINE_API_TOKEN="remote", BOT_QUEUE_NOTICE="0.5"
    )


def pending_jobs(launcher: BotLauncher) -> list[str]:
    with sqlite3.connect(launcher.home / "data" / "bot-pending.sqlite3") as db:
        return [row[0] for row in db.execute("SELECT job_id FROM pending")]


async def test_a_job_the_service_never_starts_is_told_and_kept(
    fake: FakeDiscord, launcher: BotLauncher, stub: StubService, bot: BotProcess
) -> None:
    stub.states["job1"] = [{"progress": 0, "status": "queued", "queuePosition": 4}]
    inter = await fake.slash("imagine", {"prompt": "a ship in a bottle"})
    message = await fake.wait_for(
        lambda: saying(inter.original, "has not started"),
        TIMEOUT,
    )
    assert message["content"] == (
        f"**a ship in a bottle** - <@{fake.owner['id']}> (Waiting to start: 4 ahead in the queue)\n"
        "The image service has not started this job after 0.5 seconds; it is still queued, and "
        "the result will be posted here when it is done."
    )
    assert pending_jobs(launcher) == ["job1"]  # kept: a restart would resume it

    stub.finish("job1", image=png_bytes((256, 256)))  # the service's workers are back
    grid = await finished_original(fake, inter)
    assert labels(grid) == GRID_LABELS
    await fake.wait_for(lambda: not pending_jobs(launcher))  # removed once posted


async def test_a_region_sent_from_the_editor_while_the_bot_was_down_is_posted_on_restart(
    fake: FakeDiscord, launcher: BotLauncher, stub: StubService, bot: BotProcess
) -> None:
    async with asyncio.timeout(TIMEOUT):  # the bot has read the inbox once: its place is kept
        while not any(r.path == "/web/api/inbox" and r.query for r in stub.requests):
            await asyncio.sleep(0.05)
    await bot.stop()
    upscale = fake.world.create_message(
        fake.channel_id, {"content": "an upscale"}, [], author=fake.owner
    )
    stub.finish("region1", image=png_bytes((64, 64)), kind="variation",
                content="a harbour with a lighthouse")  # fmt: skip
    stub.inbox.append({
        "messageId": "region1", "user": fake.owner["id"], "guild": fake.guild_id,
        "channel": fake.channel_id, "replyTo": upscale.id,
        "prompt": "a harbour with a lighthouse", "button": "Vary (Region)",
    })  # fmt: skip
    await launcher.start(IMAGINE_API_URL=stub.base_url, IMAGINE_API_TOKEN="remote")
    result = await fake.wait_for(
        lambda: next(
            (m for m in fake.messages()
             if (m.get("message_reference") or {}).get("message_id") == upscale.id
             and m["attachments"]),
            None,
        ),
        TIMEOUT,
    )  # fmt: skip
    assert result["content"].startswith("**a harbour with a lighthouse** - ")
    assert f"<@{fake.owner['id']}>" in result["content"]
    assert set(GRID_LABELS) <= set(labels(result))
    # a second restart does not post it again
    count = len([m for m in fake.messages() if "a harbour with a lighthouse" in m["content"]])
    await launcher.processes[-1].stop()
    await launcher.start(IMAGINE_API_URL=stub.base_url, IMAGINE_API_TOKEN="remote")
    await asyncio.sleep(1.0)
    assert (
        len([m for m in fake.messages() if "a harbour with a lighthouse" in m["content"]]) == count
    )
