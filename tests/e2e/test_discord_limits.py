"""Discord's limits: a grid over the upload limit is re-encoded under it; a job that outlives the
interaction token (15 minutes on Discord, 1.5 s here) is still posted, as a channel message, and
its old progress message says where the result went."""

from __future__ import annotations

import re

import pytest
import pytest_asyncio

from bot.errors import TOO_LONG
from tests.e2e.conftest import BotLauncher, BotProcess, fake_rule
from tests.e2e.screen import GRID_LABELS, TIMEOUT, finished_original, image, labels, saying
from tests.fakediscord import FakeDiscord

pytestmark = pytest.mark.asyncio(loop_scope="module")

UPLOAD_LIMIT = 48 * 1024
"""The placeholder's 1024² grid is well over this as the service's JPEG (about 90 KB)."""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(launcher: BotLauncher) -> BotProcess:
    return await launcher.start(
        BOT_UPLOAD_LIMIT=str(UPLOAD_LIMIT), IMAGINE_PLACEHOLDER_SECONDS="2.5"
    )


async def test_oversize_grid_is_reencoded_under_the_limit(
    fake: FakeDiscord, bot: BotProcess
) -> None:
    inter = await fake.slash("imagine", {"prompt": "a crowded market, intricate detail"})
    message = await finished_original(fake, inter)
    picture, attachment = await image(fake, message)
    assert attachment["size"] <= UPLOAD_LIMIT
    assert attachment["filename"].endswith(".webp")  # re-encoded: the service sent a JPEG
    assert picture.width >= 256
    assert labels(message) == GRID_LABELS


async def test_job_longer_than_the_token_still_posts(fake: FakeDiscord, bot: BotProcess) -> None:
    with fake_rule(fake, token_life=1.5):
        inter = await fake.slash("imagine", {"prompt": "a slow sunrise"})
        await fake.wait_for(lambda: inter.original and "Waiting" in inter.original["content"])

        def posted() -> dict[str, object] | None:
            for message in fake.messages():
                reference = message.get("message_reference") or {}
                if reference.get("message_id") == inter.original_id and message["attachments"]:
                    return message
            return None

        result = await fake.wait_for(posted, TIMEOUT)
    assert "interaction_metadata" not in result  # a plain channel message, not the dead token's
    assert result["content"] == f"**a slow sunrise** - <@{fake.owner['id']}>"
    assert labels(result) == GRID_LABELS
    picture, _ = await image(fake, result)
    assert picture.width >= 256
    # the old progress message is not left frozen beside the result: progress went on in it with
    # the bot token once the interaction token had expired, and it now says where the result is
    link = f"https://discord.com/channels/{fake.guild_id}/{fake.channel_id}/{result['id']}"
    original = await fake.wait_for(lambda: saying(inter.original, "new message"))
    assert original["content"] == (
        f"**a slow sunrise** - <@{fake.owner['id']}> (The result is in a new message: {link})"
    )
    assert original["attachments"] == []
    by_bot_token = [
        call["json"]["content"]
        for call in fake.calls
        if call["method"] == "PATCH"
        and call["path"] == f"/channels/{fake.channel_id}/messages/{inter.original_id}"
        and call["status"] == 200
    ]
    assert any(re.search(r"\(\d{1,2}%\) [▰▱]{10}$", text) for text in by_bot_token), by_bot_token
    # the token's refusals were expected; take them out so the harness does not flag them
    expired = [e for e in fake.errors if e.get("code") == 50027]
    assert expired
    for error in expired:
        fake.errors.remove(error)


async def test_a_failure_after_the_token_is_told_in_the_channel_and_in_the_old_message(
    fake: FakeDiscord, launcher: BotLauncher, bot: BotProcess
) -> None:
    assert await bot.stop() == 0  # this one needs a service whose jobs time out
    await launcher.start(IMAGINE_JOB_TIMEOUT="1", IMAGINE_PLACEHOLDER_SECONDS="3")
    owner = fake.owner["id"]
    with fake_rule(fake, token_life=0.5):
        inter = await fake.slash("imagine", {"prompt": "a stalled clock"})

        def told() -> dict[str, object] | None:
            if inter.original_id is None:
                return None
            for message in fake.messages():
                reference = message.get("message_reference") or {}
                if reference.get("message_id") == inter.original_id and message["content"]:
                    return message
            return None

        notice = await fake.wait_for(told, TIMEOUT)
        assert notice["content"] == f"<@{owner}> {TOO_LONG}"  # a mention: the user is pinged
        link = f"https://discord.com/channels/{fake.guild_id}/{fake.channel_id}/{notice['id']}"
        original = await fake.wait_for(lambda: saying(inter.original, "new message"))
    assert original["content"] == (
        f"**a stalled clock** - <@{owner}> (It failed; the reason is in a new message: {link})"
    )
    for error in [e for e in fake.errors if e.get("code") == 50027]:
        fake.errors.remove(error)
