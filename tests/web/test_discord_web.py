"""The web pages through the real bot (``python -m bot``, its embedded service, the placeholder
engine) on the fake Discord, in Chromium: **Vary (Region)** answers privately with the editor's
link; a region painted with the mouse and sent comes back in the channel as the member's own
result with its buttons, unchanged outside the painted region; ``/gallery`` links each member
to their own images only."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from PIL import ImageChops

from tests.e2e.conftest import BotLauncher, BotProcess, fake, launcher, no_logged_errors
from tests.e2e.screen import (
    button,
    finished_original,
    image,
    is_ephemeral,
    labels,
    private_notice,
    reply_to,
)
from tests.fakediscord import FakeDiscord
from tests.web.conftest import chromium, open_page
from tests.web.test_editor_page import outside, paint

__all__ = ["fake", "launcher", "no_logged_errors"]  # fixtures, used by name
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]
JSON = dict[str, Any]
LINK = re.compile(r"http://127\.0\.0\.1:\d+/web/(?:editor|gallery)/[A-Za-z0-9_.-]+")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(launcher: BotLauncher) -> BotProcess:
    return await launcher.start(IMAGINE_PLACEHOLDER_SECONDS="0.1")


async def upscaled(fake: FakeDiscord, prompt: str, user: JSON | None = None) -> JSON:
    inter = await fake.slash("imagine", {"prompt": prompt}, user=user)
    grid = await finished_original(fake, inter)
    await fake.click(grid["id"], button(grid, "U1")["custom_id"], user=user)
    return await reply_to(fake, grid["id"])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    async with chromium() as launched:  # in the module's loop, like the bot and the fake
        yield launched


async def test_vary_region_from_the_editor_comes_back_to_the_channel(
    fake: FakeDiscord, bot: BotProcess, browser: Any
) -> None:
    upscale = await upscaled(fake, "a harbour at noon --seed 21")
    assert "Vary (Region)" in labels(upscale)
    click = await fake.click(upscale["id"], button(upscale, "Vary (Region)")["custom_id"])
    notice = await private_notice(fake, click)
    assert click.ack_delay is not None
    assert click.ack_delay < 3.0
    assert is_ephemeral(notice)
    [url] = LINK.findall(notice["content"])
    assert "/web/editor/" in url
    public_before = [m["id"] for m in fake.messages() if not is_ephemeral(m)]

    page, requested = await open_page(browser, url)
    await page.wait_for_function("document.getElementById('mask').width > 0")
    await paint(page, [(0.3, 0.5, 0.7, 0.5)])
    await page.fill("#prompt", "a harbour at noon with a lighthouse --seed 21")
    await page.click("#submit")
    await page.wait_for_selector("#status.ok")
    assert "Sent" in await page.inner_text("#status")
    host = url.split("/web/")[0]
    assert all(r.startswith(host + "/") for r in requested), requested
    brush = 40 * 512 // int((await page.locator("#mask").bounding_box())["width"])
    await page.context.close()

    varied = await reply_to(fake, upscale["id"])
    assert varied["id"] not in public_before
    assert not is_ephemeral(varied)
    assert varied["content"].startswith("**a harbour at noon with a lighthouse --seed 21**")
    assert f"<@{fake.world.owner['id']}>" in varied["content"]  # the member's own result
    assert {"U1", "U2", "U3", "U4", "V1"} <= set(labels(varied))
    # its U1, full size as Discord shows it, is the old image outside the painted stroke
    await fake.click(varied["id"], button(varied, "U1")["custom_id"])
    tile = await reply_to(fake, varied["id"])
    before, _ = await image(fake, upscale)
    after, _ = await image(fake, tile)
    before, after = before.convert("RGB"), after.convert("RGB")
    assert after.size == before.size
    diff = ImageChops.difference(before, after).convert("L")
    keep = outside(before.size, (0.3, 0.5, 0.7, 0.5), brush * before.width // 512 // 2 + 3)
    assert ImageChops.multiply(diff, keep).getbbox() is None, "changed outside the region"
    w, h = before.size
    assert diff.crop((int(0.35 * w), int(0.48 * h), int(0.65 * w), int(0.52 * h))).getbbox()


async def test_gallery_links_each_member_to_their_own_images(
    fake: FakeDiscord, bot: BotProcess, browser: Any
) -> None:
    alice, bob = fake.add_user("alice"), fake.add_user("bob")
    for user, prompt in ((alice, "alice's copper kettle"), (bob, "bob's glass teapot")):
        await finished_original(fake, await fake.slash("imagine", {"prompt": prompt}, user=user))
    inter = await fake.slash("gallery", {}, user=alice)
    notice = await private_notice(fake, inter)
    assert is_ephemeral(notice)
    assert inter.ack_delay is not None
    assert inter.ack_delay < 3.0
    [url] = LINK.findall(notice["content"])
    page, _ = await open_page(browser, url)
    text = await page.inner_text("main")
    assert "alice's copper kettle" in text
    assert "bob's glass teapot" not in text
    await page.context.close()
