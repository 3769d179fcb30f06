"""Where results go (/settings): only to the member in the channel (ephemeral), to their DMs, or
ephemeral after all when their DMs are closed; and Low Variation Mode for V1–V4. Through the real
bot on the fake Discord."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.conftest import BotLauncher, BotProcess
from tests.e2e.screen import (
    TIMEOUT,
    button,
    finished_original,
    is_ephemeral,
    labels,
    private_notice,
)
from tests.e2e.test_settings import clicked, control, open_panel
from tests.fakediscord import FakeDiscord, FakeInteraction

pytestmark = pytest.mark.asyncio(loop_scope="module")
JSON = dict[str, Any]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(launcher: BotLauncher) -> BotProcess:
    return await launcher.start(IMAGINE_PLACEHOLDER_SECONDS="0.1")


async def choose(fake: FakeDiscord, user: JSON, visibility: str) -> JSON:
    """Click the panel's visibility button until it shows ``visibility``."""
    panel = await open_panel(fake, user)
    for _ in range(3):
        current = next(
            item["custom_id"]
            for row in panel["components"]
            for item in row["components"]
            if item["custom_id"].startswith("pref:me:visibility:")
        )
        if visibility_of(panel) == visibility:
            return panel
        click = await fake.click(panel["id"], current, user=user)
        panel = await clicked(fake, click, panel["id"])
    raise AssertionError(f"the panel never showed {visibility}: {panel['content']}")


def visibility_of(panel: JSON) -> str:
    words = panel["content"]
    if "sent to your DMs" in words:
        return "dm"
    if "shown only to you" in words:
        return "ephemeral"
    return "public"


def result_in(messages: list[JSON]) -> JSON | None:
    done = [m for m in messages if m["attachments"] and set(labels(m)) - {"Cancel"}]
    return done[-1] if done else None


def public_with(fake: FakeDiscord, words: str) -> list[JSON]:
    return [m for m in fake.messages() if not is_ephemeral(m) and words in m["content"]]


async def followup_result(fake: FakeDiscord, inter: FakeInteraction) -> JSON:
    return await fake.wait_for(lambda: result_in(inter.followups), TIMEOUT)


async def test_ephemeral_results_are_seen_only_by_their_member(
    fake: FakeDiscord, bot: BotProcess
) -> None:
    shy = fake.add_user("shy")
    panel = await choose(fake, shy, "ephemeral")
    assert "shown only to you" in panel["content"]
    inter = await fake.slash("imagine", {"prompt": "a hidden cove --seed 4"}, user=shy)
    grid = await finished_original(fake, inter)
    assert is_ephemeral(grid)
    assert {"U1", "V1", "🔄"} <= set(labels(grid))
    # its buttons work, and what they make is private too
    click = await fake.click(grid["id"], button(grid, "U2")["custom_id"], user=shy)
    upscale = await followup_result(fake, click)
    assert is_ephemeral(upscale)
    assert upscale["content"].startswith("**a hidden cove --seed 4** - Image #2")
    assert public_with(fake, "a hidden cove") == []  # nothing in the channel for others


async def test_dm_results_arrive_in_dms_and_their_buttons_work_there(
    fake: FakeDiscord, bot: BotProcess
) -> None:
    pen = fake.add_user("pen-pal")
    await choose(fake, pen, "dm")
    inter = await fake.slash("imagine", {"prompt": "a letter by the sea --seed 9"}, user=pen)
    note = await private_notice(fake, inter)
    assert "on their way to your DMs" in note["content"]
    grid = await fake.wait_for(lambda: result_in(fake.dm_messages(pen["id"])), TIMEOUT)
    assert grid["content"].startswith("**a letter by the sea --seed 9** - ")
    assert public_with(fake, "a letter by the sea") == []
    # a button pressed in the DM: its result comes in the DM
    count = len(fake.dm_messages(pen["id"]))
    await fake.click(grid["id"], button(grid, "V1")["custom_id"], user=pen)
    varied = await fake.wait_for(lambda: result_in(fake.dm_messages(pen["id"])[count:]), TIMEOUT)
    assert "Variations" in varied["content"]


async def test_closed_dms_turn_into_private_results_with_a_sentence(
    fake: FakeDiscord, bot: BotProcess
) -> None:
    closed = fake.add_user("closed-dms")
    await choose(fake, closed, "dm")
    fake.block_dms(closed["id"])
    inter = await fake.slash("imagine", {"prompt": "a locked mailbox --seed 2"}, user=closed)
    grid = await finished_original(fake, inter)
    assert is_ephemeral(grid)
    notes = [m["content"] for m in inter.followups if is_ephemeral(m)]
    assert any("cannot send you DMs" in n for n in notes), notes
    assert public_with(fake, "a locked mailbox") == []
    assert fake.errors[-1]["code"] == 50007  # the refused DM, as Discord refuses it
    fake.errors.pop()


async def test_low_variation_mode_makes_subtle_variations(
    fake: FakeDiscord, bot: BotProcess
) -> None:
    calm = fake.add_user("calm")
    panel = await open_panel(fake, calm)
    low = await fake.click(panel["id"], "pref:me:vary:subtle", user=calm)
    panel = await clicked(fake, low, panel["id"])
    assert control(panel, "pref:me:vary:subtle")["style"] == 3  # green: chosen
    assert "Low Variation Mode" in panel["content"]
    inter = await fake.slash("imagine", {"prompt": "a calm lake --seed 6"}, user=calm)
    grid = await finished_original(fake, inter)
    strengths = {}
    for who, name in ((calm, "calm"), (fake.add_user("bold"), "bold")):
        before = len(fake.messages())
        await fake.click(grid["id"], button(grid, "V2")["custom_id"], user=who)
        varied = await fake.wait_for(lambda b=before: result_in(fake.messages()[b:]), TIMEOUT)
        menu = await fake.message_command("Show job", varied["id"], user=who)
        strengths[name] = (await private_notice(fake, menu))["content"]
    assert "strength 0.35" in strengths["calm"]
    assert "strength 0.65" in strengths["bold"]  # everyone else: High Variation Mode


async def test_an_ephemeral_result_whose_token_expired_comes_by_dm(
    fake: FakeDiscord, launcher: BotLauncher, bot: BotProcess
) -> None:
    late = fake.add_user("late")
    await choose(fake, late, "ephemeral")
    await bot.stop()
    # a token the bot counts as expired from the start: as a job that rendered for 15 minutes
    short = await launcher.start(IMAGINE_PLACEHOLDER_SECONDS="0.1", BOT_INTERACTION_TTL="1")
    try:
        inter = await fake.slash("imagine", {"prompt": "a slow tide --seed 5"}, user=late)
        grid = await fake.wait_for(lambda: result_in(fake.dm_messages(late["id"])), TIMEOUT)
        assert grid["content"].startswith("**a slow tide --seed 5** - ")
        assert "your private reply in the channel had expired" in grid["content"]
        assert {"U1", "V1"} <= set(labels(grid))
        assert public_with(fake, "a slow tide") == []
        assert inter.original is not None
        assert is_ephemeral(inter.original)
    finally:
        await short.stop()
        await launcher.start(IMAGINE_PLACEHOLDER_SECONDS="0.1")
