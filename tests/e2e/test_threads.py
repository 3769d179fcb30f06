"""Threads: Discord's permission for posting in a thread is Send Messages in Threads, not Send
Messages. A channel that denies the bot Send Messages but allows it in threads (an announcement
channel whose threads are for discussion) works in its threads; one that denies Send Messages in
Threads is refused there in words, before the bot takes a job it could not post."""

from __future__ import annotations

import pytest
import pytest_asyncio

from tests.e2e.conftest import BotLauncher, BotProcess
from tests.e2e.screen import GRID_LABELS, button, finished_original, is_ephemeral, labels, reply_to
from tests.fakediscord import FakeDiscord
from tests.fakediscord.payloads import BOT_PERMISSIONS, SEND_MESSAGES, SEND_MESSAGES_IN_THREADS

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(launcher: BotLauncher) -> BotProcess:
    return await launcher.start(IMAGINE_PLACEHOLDER_SECONDS="0.2")


async def test_a_thread_takes_send_messages_in_threads(fake: FakeDiscord, bot: BotProcess) -> None:
    parent = fake.add_channel("announcements", permissions=BOT_PERMISSIONS & ~SEND_MESSAGES)
    thread = fake.add_thread(parent["id"], "ideas")
    inter = await fake.slash("imagine", {"prompt": "a paper boat"}, channel_id=thread["id"])
    grid = await finished_original(fake, inter)
    assert inter.response_type == 5  # deferred: taken, not refused
    assert labels(grid) == GRID_LABELS
    # a button's result is a new message in the thread: the bot posts it with its own token
    await fake.click(grid["id"], button(grid, "V1")["custom_id"])
    result = await reply_to(fake, grid["id"], channel_id=thread["id"])
    assert labels(result) == GRID_LABELS


async def test_a_thread_without_send_messages_in_threads_is_refused_in_words(
    fake: FakeDiscord, bot: BotProcess
) -> None:
    parent = fake.add_channel("no-threads", permissions=BOT_PERMISSIONS & ~SEND_MESSAGES_IN_THREADS)
    thread = fake.add_thread(parent["id"], "chatter")
    inter = await fake.slash("imagine", {"prompt": "a paper boat"}, channel_id=thread["id"])
    notice = await fake.wait_for(lambda: inter.original)
    assert inter.response_type == 4  # refused before deferring: a direct private reply
    assert is_ephemeral(notice)
    assert notice["content"] == (
        "I can't post results here: I need the Send Messages in Threads permission in the "
        "channel of this thread."
    )
