"""What made a result, through the real bot on the fake Discord: ✉️ DMs the job's seed and
parameters, "Apps → Show job" answers privately, and both refuse messages that are no result."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.conftest import BotLauncher, BotProcess
from tests.e2e.screen import TIMEOUT, finished_original, is_ephemeral, private_notice
from tests.fakediscord import FakeDiscord

pytestmark = pytest.mark.asyncio(loop_scope="module")
JSON = dict[str, Any]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(launcher: BotLauncher) -> BotProcess:
    return await launcher.start(IMAGINE_PLACEHOLDER_SECONDS="0.1")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def result(fake: FakeDiscord, bot: BotProcess) -> JSON:
    inter = await fake.slash("imagine", {"prompt": "a red kite over dunes --seed 4242 --ar 3:2"})
    return await finished_original(fake, inter)


async def test_envelope_reaction_dms_the_seed_and_parameters(
    fake: FakeDiscord, result: JSON
) -> None:
    member = fake.add_user("curious")
    await fake.react(result["id"], "✉️", user=member)
    [dm] = await fake.wait_for(lambda: fake.dm_messages(member["id"]), TIMEOUT)
    text = dm["content"]
    assert "a red kite over dunes --seed 4242 --ar 3:2" in text
    assert "**Seed** 4242" in text
    assert "engine placeholder" in text
    assert "--seed 4242" in text.rsplit("\n", 1)[-1]
    # the channel saw nothing
    assert not [m for m in fake.messages() if "Seed" in m["content"]]


async def test_a_member_who_takes_no_dms_is_told_in_the_channel(
    fake: FakeDiscord, result: JSON
) -> None:
    member = fake.add_user("closed-dms")
    fake.block_dms(member["id"])
    await fake.react(result["id"], "✉️", user=member)
    note = await fake.wait_for(
        lambda: next(
            (m for m in fake.messages() if f"<@{member['id']}> I can't send you" in m["content"]),
            None,
        ),
        TIMEOUT,
    )
    assert "Show job" in note["content"]
    assert fake.dm_messages(member["id"]) == []
    assert fake.errors[-1]["code"] == 50007  # the refused DM, as Discord refuses it
    fake.errors.pop()


async def test_other_reactions_and_non_results_are_left_alone(
    fake: FakeDiscord, result: JSON
) -> None:
    member = fake.add_user("reactor")
    theirs = fake.world.create_message(fake.channel_id, {"content": "mine"}, [], author=member)
    before = len(fake.messages())
    await fake.react(result["id"], "👍", user=member)
    await fake.react(theirs.id, "✉️", user=member)
    # then a ✉️ that must answer: once it has, the two before it were seen and left alone
    await fake.react(result["id"], "✉️", user=member)
    [dm] = await fake.wait_for(lambda: fake.dm_messages(member["id"]), TIMEOUT)
    await asyncio.sleep(0.5)
    assert len(fake.dm_messages(member["id"])) == 1
    assert "4242" in dm["content"]
    assert len(fake.messages()) == before  # nothing was posted in the channel


async def test_show_job_answers_privately(fake: FakeDiscord, result: JSON) -> None:
    member = fake.add_user("menu-user")
    inter = await fake.message_command("Show job", result["id"], user=member)
    notice = await private_notice(fake, inter)
    assert inter.ack_delay is not None
    assert inter.ack_delay < 3.0
    assert is_ephemeral(notice)
    assert "**Seed** 4242" in notice["content"]
    assert "a red kite over dunes" in notice["content"]


async def test_show_job_on_a_message_that_is_no_result(fake: FakeDiscord, bot: BotProcess) -> None:
    inter = await fake.slash("imagine", {"prompt": "a quiet pond --seed 3"})
    grid = await finished_original(fake, inter)
    # a member's own message is no result
    posted = fake.world.create_message(
        fake.channel_id, {"content": "look at this"}, [], author=fake.owner
    )
    menu = await fake.message_command("Show job", posted.id)
    notice = await private_notice(fake, menu)
    assert "not one of my results" in notice["content"]
    # a burst of Show job on the same result: every one answers
    members = [fake.add_user(f"menu{n}") for n in range(8)]
    menus = [await fake.message_command("Show job", grid["id"], user=m) for m in members]
    for one in menus:
        assert "**Seed** 3" in (await private_notice(fake, one))["content"]


async def test_parameters_the_engine_ignores_are_named_under_the_result(
    fake: FakeDiscord, bot: BotProcess
) -> None:
    inter = await fake.slash("imagine", {"prompt": "a strange garden --weird 250 --seed 8"})
    grid = await finished_original(fake, inter)
    assert "This engine ignored `--weird 250`" in grid["content"]
    plain = await fake.slash("imagine", {"prompt": "a plain garden --seed 8"})
    assert "ignored" not in (await finished_original(fake, plain))["content"]
