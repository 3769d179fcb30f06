"""/settings through the real bot on the fake Discord: a member's settings are appended to their
prompts and survive a restart, a server's locked default holds against members, Remix opens a
modal with the prompt before V1."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.conftest import BotLauncher, BotProcess
from tests.e2e.screen import (
    TIMEOUT,
    button,
    buttons,
    finished_original,
    is_ephemeral,
    private_notice,
    reply_to,
)
from tests.fakediscord import FakeDiscord, FakeInteraction

pytestmark = pytest.mark.asyncio(loop_scope="module")
JSON = dict[str, Any]
MANAGE_GUILD = 1 << 5
STARTED: dict[str, BotProcess] = {}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(launcher: BotLauncher) -> BotProcess:
    STARTED["bot"] = await launcher.start(IMAGINE_PLACEHOLDER_SECONDS="0.1")
    return STARTED["bot"]


async def open_panel(fake: FakeDiscord, user: JSON, scope: str | None = None) -> JSON:
    inter = await fake.slash("settings", {"scope": scope} if scope else {}, user=user)
    return await fake.wait_for(
        lambda: inter.original if inter.original and buttons(inter.original) else None, TIMEOUT
    )


def control(panel: JSON, custom_id: str) -> JSON:
    for row in panel["components"]:
        for item in row["components"]:
            if item["custom_id"] == custom_id:
                return item
    raise AssertionError(f"no {custom_id} on the panel")


async def clicked(fake: FakeDiscord, inter: FakeInteraction, message_id: str) -> JSON:
    await fake.wait_for(lambda: inter.acked_at, TIMEOUT)
    assert inter.ack_delay is not None
    assert inter.ack_delay < 3.0
    return fake.message(message_id)


async def headline_of(fake: FakeDiscord, user: JSON, prompt: str) -> str:
    inter = await fake.slash("imagine", {"prompt": prompt}, user=user)
    result: str = (await finished_original(fake, inter))["content"]
    return result


async def test_member_settings_are_appended_and_survive_a_restart(
    fake: FakeDiscord, launcher: BotLauncher, bot: BotProcess
) -> None:
    dana = fake.add_user("dana")
    panel = await open_panel(fake, dana)
    assert is_ephemeral(panel)
    raw = await fake.click(panel["id"], "pref:me:raw:", user=dana)
    panel = await clicked(fake, raw, panel["id"])
    assert control(panel, "pref:me:raw:")["style"] == 3  # green: on
    stylize = await fake.select(panel["id"], "prefs:me:stylize", ["high"], user=dana)
    panel = await clicked(fake, stylize, panel["id"])
    relax = await fake.click(panel["id"], "pref:me:speed:relax", user=dana)
    panel = await clicked(fake, relax, panel["id"])
    assert "--s 250 --style raw --relax" in panel["content"]

    text = await headline_of(fake, dana, "a fox in snow")
    assert text.startswith("**a fox in snow --s 250 --style raw --relax** - ")
    # what the prompt sets itself is not appended again
    text = await headline_of(fake, dana, "a fox in snow --s 20")
    assert text.startswith("**a fox in snow --s 20 --style raw --relax** - ")

    # a restart: the settings are in the bot's own file
    await bot.stop()
    await launcher.start(IMAGINE_PLACEHOLDER_SECONDS="0.1")
    text = await headline_of(fake, dana, "a fox in rain")
    assert text.startswith("**a fox in rain --s 250 --style raw --relax** - ")

    reset = await fake.click(panel["id"], "pref:me:reset:", user=dana)
    await clicked(fake, reset, panel["id"])
    assert (await headline_of(fake, dana, "a plain fox")).startswith("**a plain fox** - ")


async def test_a_locked_server_default_holds_against_members(
    fake: FakeDiscord, bot: BotProcess
) -> None:
    admin = fake.add_user("admin", permissions=MANAGE_GUILD)
    member = fake.add_user("member")
    refused = await fake.slash("settings", {"scope": "server"}, user=member)
    assert "Manage Server" in (await private_notice(fake, refused))["content"]

    server = await open_panel(fake, admin, "server")
    pick = await fake.select(server["id"], "prefs:server:stylize", ["very high"], user=admin)
    server = await clicked(fake, pick, server["id"])
    lock = await fake.select(server["id"], "prefs:server:locks", ["stylize"], user=admin)
    server = await clicked(fake, lock, server["id"])
    assert "Locked by the server: Stylize" in server["content"]

    # the member's own stylize cannot be changed, and does not count
    panel = await open_panel(fake, member)
    assert control(panel, "prefs:me:stylize")["disabled"] is True
    assert (await headline_of(fake, member, "a locked owl")).startswith(
        "**a locked owl --s 750** - "
    )
    typed = await fake.slash("imagine", {"prompt": "a locked owl --s 50"}, user=member)
    notice = await private_notice(fake, typed)
    assert "locked --s to --s 750" in notice["content"]

    unlock = await fake.select(server["id"], "prefs:server:locks", [], user=admin)
    await clicked(fake, unlock, server["id"])
    assert (await headline_of(fake, member, "a free owl --s 50")).startswith(
        "**a free owl --s 50** - "
    )
    reset = await fake.click(server["id"], "pref:server:reset:", user=admin)
    await clicked(fake, reset, server["id"])
    assert (await headline_of(fake, member, "a bare owl")).startswith("**a bare owl** - ")


async def test_remix_opens_the_prompt_before_a_variation(
    fake: FakeDiscord, bot: BotProcess
) -> None:
    remixer = fake.add_user("remixer")
    panel = await open_panel(fake, remixer)
    on = await fake.click(panel["id"], "pref:me:remix:", user=remixer)
    await clicked(fake, on, panel["id"])
    inter = await fake.slash("imagine", {"prompt": "a red barn --seed 5"}, user=remixer)
    grid = await finished_original(fake, inter)
    click = await fake.click(grid["id"], button(grid, "V2")["custom_id"], user=remixer)
    await fake.wait_for(lambda: click.modal, 5.0)
    assert click.ack_delay is not None
    assert click.ack_delay < 3.0
    row = click.modal["components"][0]
    field = row["components"][0] if row["type"] == 1 else row["component"]
    assert field["value"] == "a red barn --seed 5"
    await fake.submit_modal(click, {"prompt": "a blue barn --seed 5"}, user=remixer)
    varied = await reply_to(fake, grid["id"])
    assert varied["content"].startswith("**a blue barn --seed 5** - Variations by")
    # someone whose Remix is off presses straight away
    other = fake.add_user("no-remix")
    plain = await fake.click(grid["id"], button(grid, "V3")["custom_id"], user=other)
    await reply_to(fake, grid["id"], after=1)
    assert plain.modal is None
