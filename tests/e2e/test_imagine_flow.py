"""/imagine and every button, through the real ``python -m bot`` (embedded service, placeholder
engine) against the fake Discord; ends with a real restart of the bot process."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
import pytest_asyncio
from PIL import Image, ImageChops, ImageStat

from tests.e2e.conftest import BotLauncher, BotProcess
from tests.e2e.screen import (
    COMMANDS,
    GRID_LABELS,
    PRIMARY,
    SECONDARY,
    UPSCALE_LABELS,
    button,
    buttons,
    finished_original,
    image,
    is_ephemeral,
    labels,
    private_notice,
    reply_to,
)
from tests.fakediscord import FakeDiscord

pytestmark = pytest.mark.asyncio(loop_scope="module")

SLOW = "0.8"
"""Seconds the placeholder takes per job: long enough for progress edits to show."""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(launcher: BotLauncher) -> BotProcess:
    return await launcher.start(IMAGINE_PLACEHOLDER_SECONDS=SLOW)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def grid(fake: FakeDiscord, bot: BotProcess) -> dict[str, Any]:
    """One /imagine that the button tests share: its interaction and its finished message."""
    inter = await fake.slash("imagine", {"prompt": "a lighthouse at dusk --seed 7"})
    message = await finished_original(fake, inter)
    return {"inter": inter, "message": message}


async def test_login_syncs_commands_to_the_configured_server_only(
    fake: FakeDiscord, bot: BotProcess
) -> None:
    names = sorted(c["name"] for c in fake.registered_commands(fake.guild_id))
    assert names == COMMANDS
    assert fake.registered_commands() == []  # never a global sync on boot
    imagine = next(c for c in fake.registered_commands(fake.guild_id) if c["name"] == "imagine")
    assert [(o["name"], o["type"], o.get("required", False)) for o in imagine["options"]] == [
        ("prompt", 3, True),
        ("image", 11, False),
    ]


async def test_imagine_defers_shows_progress_and_posts_the_grid(
    fake: FakeDiscord, grid: dict[str, Any]
) -> None:
    inter, message = grid["inter"], grid["message"]
    assert inter.response_type == 5  # deferred: "imagine is thinking…"
    assert inter.ack_delay is not None
    assert inter.ack_delay < 3.0
    owner = fake.owner["id"]
    progress = [edit["content"] for edit in message["edits"][:-1] if "content" in edit]
    assert progress[0] == f"**a lighthouse at dusk --seed 7** - <@{owner}> (Waiting to start)"
    assert any(re.search(r"\(\d{1,2}%\) [▰▱]{10}$", text) for text in progress), progress
    previews = [edit["files"] for edit in message["edits"][:-1] if edit.get("files")]
    assert previews, "the engine's preview image was never shown"
    assert previews[0][0].startswith("preview_")
    assert message["content"] == f"**a lighthouse at dusk --seed 7** - <@{owner}>"
    assert not is_ephemeral(message)

    picture, attachment = await image(fake, message)
    assert attachment["filename"].endswith((".webp", ".jpg"))
    assert attachment["size"] <= 8 * 1024 * 1024
    half = (picture.width // 2, picture.height // 2)
    quadrants = [
        picture.crop((x, y, x + half[0], y + half[1])) for x in (0, half[0]) for y in (0, half[1])
    ]
    assert ImageChops.difference(quadrants[0].convert("RGB"), quadrants[3].convert("RGB")).getbbox()

    assert labels(message) == GRID_LABELS
    assert [len(row["components"]) for row in message["components"]] == [5, 4]
    ids = [b["custom_id"] for b in buttons(message)]
    job = ids[0].split(":")[1]
    assert ids == [f"mj:{job}:{label}" for label in GRID_LABELS]
    assert all(len(custom_id) <= 100 for custom_id in ids)
    assert {b["style"] for b in buttons(message)} == {SECONDARY}


async def test_u2_posts_the_single_image_with_upscale_buttons(
    fake: FakeDiscord, grid: dict[str, Any]
) -> None:
    message = grid["message"]
    click = await fake.click(message["id"], button(message, "U2")["custom_id"])
    result = await reply_to(fake, message["id"], after=0)

    assert click.response_type == 6  # acknowledged at once, silently
    assert click.ack_delay is not None
    assert click.ack_delay < 3.0
    assert (
        result["content"] == f"**a lighthouse at dusk --seed 7** - Image #2 <@{fake.owner['id']}>"
    )
    single, attachment = await image(fake, result)
    grid_picture, _ = await image(fake, message)
    assert attachment["filename"].endswith(".png")
    assert single.size == (grid_picture.width // 2, grid_picture.height // 2)
    assert set(labels(result)) <= UPSCALE_LABELS
    assert {"Vary (Strong)", "Vary (Subtle)", "Zoom Out 2x", "⬅️"} <= set(labels(result))
    assert "Make Square" not in labels(result)  # the tile is square: only what the service offers
    assert all(b["custom_id"].startswith("mj:") for b in buttons(result))
    # the pressed U turns blue on the grid, as in Midjourney
    await fake.wait_for(lambda: button(fake.message(message["id"]), "U2")["style"] == PRIMARY)
    assert button(fake.message(message["id"]), "U1")["style"] == SECONDARY


async def test_a_second_u2_is_refused_privately(fake: FakeDiscord, grid: dict[str, Any]) -> None:
    message = fake.message(grid["message"]["id"])
    click = await fake.click(message["id"], button(message, "U2")["custom_id"])
    notice = await private_notice(fake, click)
    assert notice["content"] == "That image was already upscaled: look for the earlier reply."
    assert button(fake.message(message["id"]), "U2")["style"] == PRIMARY


async def test_quick_u_presses_leave_every_pressed_u_blue(
    fake: FakeDiscord, bot: BotProcess
) -> None:
    user = fake.add_user("quick")
    inter = await fake.slash("imagine", {"prompt": "two quick hands"}, user=user)
    grid = await finished_original(fake, inter)
    # Both clicks carry the grid as it was (no U blue yet), as Discord sends it at click time.
    await fake.click(grid["id"], button(grid, "U1")["custom_id"], user=user)
    await fake.click(grid["id"], button(grid, "U2")["custom_id"], user=user)
    await reply_to(fake, grid["id"])
    await reply_to(fake, grid["id"], after=1)  # both results posted: both marks were made
    now = fake.message(grid["id"])
    assert [button(now, u)["style"] for u in ("U1", "U2", "U3", "U4")] == [
        PRIMARY,
        PRIMARY,
        SECONDARY,
        SECONDARY,
    ]


async def test_v3_posts_a_new_grid(fake: FakeDiscord, grid: dict[str, Any]) -> None:
    message = grid["message"]
    await fake.click(message["id"], button(message, "V3")["custom_id"])
    result = await reply_to(fake, message["id"], after=1)

    assert (
        result["content"]
        == f"**a lighthouse at dusk --seed 7** - Variations by <@{fake.owner['id']}>"
    )
    assert labels(result) == GRID_LABELS
    picture, _ = await image(fake, result)
    grid_picture, _ = await image(fake, message)
    assert picture.size == grid_picture.size


async def test_reroll_posts_a_grid_that_differs(fake: FakeDiscord, grid: dict[str, Any]) -> None:
    message = grid["message"]
    await fake.click(message["id"], button(message, "🔄")["custom_id"])
    result = await reply_to(fake, message["id"], after=2)

    assert labels(result) == GRID_LABELS
    assert result["content"] == f"**a lighthouse at dusk --seed 7** - <@{fake.owner['id']}>"
    new, _ = await image(fake, result)
    old, _ = await image(fake, message)
    assert ImageChops.difference(new.convert("RGB"), old.convert("RGB")).getbbox() is not None


async def test_an_attached_image_starts_the_picture(fake: FakeDiscord, bot: BotProcess) -> None:
    green = io.BytesIO()
    Image.new("RGB", (256, 256), (0, 255, 0)).save(green, format="PNG")
    prompt = {"prompt": "a quiet harbour --seed 11"}
    with_image = await fake.slash(
        "imagine", prompt, attachments={"image": (green.getvalue(), "green.png", "image/png")}
    )
    without = await fake.slash("imagine", prompt)

    greener, _ = await image(fake, await finished_original(fake, with_image))
    plain, _ = await image(fake, await finished_original(fake, without))
    assert (await finished_original(fake, with_image))["content"].startswith(
        "**a quiet harbour --seed 11** - "
    )
    green_share = [
        ImageStat.Stat(p.convert("RGB")).mean[1] - ImageStat.Stat(p.convert("RGB")).mean[0]
        for p in (greener, plain)
    ]
    assert green_share[0] > green_share[1] + 20


async def test_blend_mixes_the_attached_images_at_the_chosen_shape(
    fake: FakeDiscord, bot: BotProcess
) -> None:
    def png(colour: tuple[int, int, int]) -> bytes:
        out = io.BytesIO()
        Image.new("RGB", (128, 128), colour).save(out, format="PNG")
        return out.getvalue()

    attachments = {
        "image1": (png((230, 0, 0)), "red.png", "image/png"),
        "image2": (png((0, 0, 230)), "blue.png", "image/png"),
    }
    inter = await fake.slash("blend", {"dimensions": "portrait"}, attachments=attachments)
    message = await finished_original(fake, inter)

    assert inter.response_type == 5
    assert message["content"] == f"**Blend of red.png and blue.png** - <@{fake.owner['id']}>"
    assert labels(message) == GRID_LABELS
    picture, _ = await image(fake, message)
    assert picture.width * 3 == picture.height * 2  # portrait: 2:3 tiles make a 2:3 grid
    red, _, blue = ImageStat.Stat(picture.convert("RGB")).mean
    assert red > 40
    assert blue > 40  # both images are in it

    click = await fake.click(message["id"], button(message, "U1")["custom_id"])
    result = await reply_to(fake, message["id"], after=0)
    assert click.response_type == 6
    assert result["content"] == (
        f"**Blend of red.png and blue.png** - Image #1 <@{fake.owner['id']}>"
    )


async def test_info_and_help(fake: FakeDiscord, bot: BotProcess) -> None:
    info = await fake.slash("info")
    text: dict[str, Any] = await fake.wait_for(
        lambda: info.original if info.original and "Engine" in info.original["content"] else None
    )
    assert is_ephemeral(text)
    assert "**Engine:** placeholder" in text["content"]
    assert "placeholder** engine: pictures are test patterns" in text["content"]
    assert "of 3" in text["content"]

    shown = await fake.slash("help")
    reply = await fake.wait_for(lambda: shown.original)
    assert is_ephemeral(reply)
    fields = {f["name"]: f["value"] for f in reply["embeds"][0]["fields"]}
    assert "`--chaos N` 0–100" in fields["Parameters"]
    assert "U1–U4" in fields["Buttons"]


async def test_only_the_owner_syncs_globally(fake: FakeDiscord, bot: BotProcess) -> None:
    stranger = await fake.slash("sync", {"scope": "global"}, user=fake.add_user("stranger"))
    refusal = await fake.wait_for(lambda: stranger.original)
    assert is_ephemeral(refusal)
    assert refusal["content"] == "Only the bot's owner can sync its commands."
    assert fake.registered_commands() == []

    owner = await fake.slash("sync", {"scope": "global"})
    done = await fake.wait_for(
        lambda: owner.original if owner.original and owner.original["content"] else None
    )
    assert is_ephemeral(done)
    assert done["content"].startswith(f"Synced {len(COMMANDS)} commands globally")
    assert sorted(c["name"] for c in fake.registered_commands()) == COMMANDS


async def test_restart_resumes_a_running_job_and_old_buttons_still_work(
    fake: FakeDiscord, launcher: BotLauncher, bot: BotProcess, grid: dict[str, Any]
) -> None:
    inter = await fake.slash("imagine", {"prompt": "a night train"})
    await fake.wait_for(lambda: inter.original and "Waiting" in inter.original["content"])
    assert await bot.stop() == 0  # SIGTERM mid-job: a clean stop
    assert "on the next start" in bot.log_text()  # the job was kept for the next process

    restarted = await launcher.start(IMAGINE_PLACEHOLDER_SECONDS=SLOW)
    finished = await finished_original(fake, inter)  # the new process delivered the old job
    assert labels(finished) == GRID_LABELS

    message = grid["message"]  # made by the previous process
    await fake.click(message["id"], button(message, "U4")["custom_id"])
    result = await reply_to(fake, message["id"], after=3)
    assert result["content"].endswith(f"Image #4 <@{fake.owner['id']}>")
    assert restarted.process.returncode is None
