"""❌ Cancel on a job's progress message, through the real bot on the fake Discord: the owner or
a moderator ends a queued or a running job, anyone else is refused privately."""

from __future__ import annotations

import time
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.conftest import BotLauncher, BotProcess
from tests.e2e.screen import TIMEOUT, button, finished_original, labels, private_notice
from tests.fakediscord import FakeDiscord, FakeInteraction

pytestmark = pytest.mark.asyncio(loop_scope="module")
JSON = dict[str, Any]
MANAGE_MESSAGES = 1 << 13
RENDER = 4.0
"""Seconds the placeholder takes per job: a cancelled one ends long before."""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(launcher: BotLauncher) -> BotProcess:
    return await launcher.start(IMAGINE_PLACEHOLDER_SECONDS=str(RENDER), IMAGINE_MAX_CONCURRENT="1")


async def progress_message(fake: FakeDiscord, inter: FakeInteraction) -> JSON:
    return await fake.wait_for(
        lambda: inter.original if inter.original and "Cancel" in labels(inter.original) else None,
        TIMEOUT,
    )


async def cancelled(fake: FakeDiscord, message_id: str) -> JSON:
    return await fake.wait_for(
        lambda: (m := fake.message(message_id))["content"].endswith("(Cancelled)") and m, TIMEOUT
    )


async def test_owner_and_moderator_cancel_and_others_are_refused(
    fake: FakeDiscord, bot: BotProcess
) -> None:
    alice, bob = fake.add_user("alice"), fake.add_user("bob")
    moderator = fake.add_user("moderator", permissions=MANAGE_MESSAGES)
    running = await fake.slash("imagine", {"prompt": "a slow lighthouse"}, user=alice)
    first = await progress_message(fake, running)
    queued = await fake.slash("imagine", {"prompt": "a queued lighthouse"}, user=alice)
    second = await progress_message(fake, queued)
    assert labels(first) == ["Cancel"]

    # someone else: refused privately, the job goes on
    refused = await fake.click(first["id"], button(first, "Cancel")["custom_id"], user=bob)
    notice = await private_notice(fake, refused)
    assert f"Only <@{alice['id']}>" in notice["content"]
    assert "Cancel" in labels(fake.message(first["id"]))

    # the owner cancels the queued one: it ends at once
    click = await fake.click(second["id"], button(second, "Cancel")["custom_id"], user=alice)
    ended = await cancelled(fake, second["id"])
    assert click.ack_delay is not None
    assert click.ack_delay < 3.0
    assert ended["content"] == f"**a queued lighthouse** - <@{alice['id']}> (Cancelled)"
    assert ended["components"] == []

    # a moderator cancels the running one: it stops well before its render would end
    started = time.monotonic()
    await fake.click(first["id"], button(first, "Cancel")["custom_id"], user=moderator)
    ended = await cancelled(fake, first["id"])
    assert time.monotonic() - started < RENDER - 1
    assert ended["attachments"] == []
    assert ended["components"] == []

    # the worker is free again: a new job renders and posts its grid
    after = await fake.slash("imagine", {"prompt": "after the cancels"}, user=alice)
    grid = await finished_original(fake, after)
    assert "U1" in labels(grid)
    assert "Cancel" not in labels(grid)


async def test_cancel_on_a_finished_job_says_so(fake: FakeDiscord, bot: BotProcess) -> None:
    carol = fake.add_user("carol")
    inter = await fake.slash("imagine", {"prompt": "quick one"}, user=carol)
    progress = await progress_message(fake, inter)
    custom_id = button(progress, "Cancel")["custom_id"]
    await finished_original(fake, inter)
    # a client still showing the old message: the click arrives after the job ended
    stale = fake.world.messages[progress["id"]]
    stale.payload["components"] = progress["components"]
    late = await fake.click(progress["id"], custom_id, user=carol)
    notice = await private_notice(fake, late)
    assert "already finished" in notice["content"]
