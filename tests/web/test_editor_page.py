"""The Vary (Region) editor against the service alone, in Chromium: real mouse strokes on the
canvas, the submit, and the job it makes (the same one ``/v2/button`` with a ``mask`` makes):
outside the painted region the new image is the old one, pixel for pixel. The whole path through
the bot and Discord is in tests/web/test_discord_web.py."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image, ImageChops

from imagine.web.keys import WEB
from tests.service.conftest import fetch_image, press, submit, wait_done
from tests.web.conftest import open_page, screenshots
from tests.web.test_access import link

pytestmark = pytest.mark.slow
USER = '{"user": "555", "channel": "9"}'


async def upscaled(client: Any) -> dict[str, Any]:
    grid = await wait_done(
        client, (await submit(client, "a quiet harbour --seed 5", ref=USER))["messageId"]
    )
    return await wait_done(
        client, (await press(client, grid["buttonMessageId"], "U1"))["messageId"]
    )


async def paint(page: Any, strokes: list[tuple[float, float, float, float]]) -> None:
    """Brush strokes with the mouse, each from (x0, y0) to (x1, y1) as fractions of the canvas."""
    box = await page.locator("#mask").bounding_box()
    for x0, y0, x1, y1 in strokes:
        await page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
        await page.mouse.down()
        await page.mouse.move(box["x"] + x1 * box["width"], box["y"] + y1 * box["height"], steps=12)
        await page.mouse.up()


def outside(
    size: tuple[int, int], box: tuple[float, float, float, float], margin: int
) -> Image.Image:
    """A mask, white away from ``box`` (fractions) by more than ``margin`` pixels."""
    w, h = size
    keep = Image.new("L", size, 255)
    left, top = int(box[0] * w) - margin, int(box[1] * h) - margin
    keep.paste(0, (left, top, int(box[2] * w) + margin, int(box[3] * h) + margin))
    return keep


async def test_painting_a_region_varies_only_that_region(served: Any, browser: Any) -> None:
    client = await served()
    source_message = await upscaled(client)
    assert "Vary (Region)" in source_message["buttons"]
    url = str(client.make_url(await link(
        client, "editor", user="555", channel="9", buttonMessageId=source_message["buttonMessageId"],
    )))  # fmt: skip
    cursor = (await (await client.get("/web/api/inbox")).json())["cursor"]
    page, requested = await open_page(browser, url)
    await page.wait_for_function("document.getElementById('mask').width > 0")
    # a stroke, an undone stroke, and a rectangle
    await paint(page, [(0.2, 0.3, 0.5, 0.3)])
    await paint(page, [(0.1, 0.9, 0.9, 0.9)])
    await page.click("#undo")
    await page.click("[data-tool=rect]")
    await paint(page, [(0.6, 0.6, 0.8, 0.75)])
    await page.fill("#prompt", "a quiet harbour with a red boat --seed 5")
    await page.click("#submit")
    await page.wait_for_selector("#status.ok")
    assert "Sent" in await page.inner_text("#status")
    assert all(r.startswith(str(client.make_url("/"))) for r in requested), requested

    inbox = await (await client.get(f"/web/api/inbox?after={cursor}")).json()
    [sent] = inbox["jobs"]
    assert (sent["user"], sent["channel"], sent["button"]) == ("555", "9", "Vary (Region)")
    assert sent["prompt"] == "a quiet harbour with a red boat --seed 5"
    varied = await wait_done(client, sent["messageId"])
    assert varied["buttons"]  # a result with its buttons, like any press

    before = (await fetch_image(client, source_message["imageUrl"])).convert("RGB")
    after = (await fetch_image(client, varied["imageUrls"][0])).convert("RGB")
    assert after.size == before.size
    diff = ImageChops.difference(before, after).convert("L")
    brush = 40 * before.width // int((await page.locator("#mask").bounding_box())["width"])
    stroke = outside(before.size, (0.2, 0.3, 0.5, 0.3), brush // 2 + 3)
    rect = outside(before.size, (0.6, 0.6, 0.8, 0.75), 3)
    untouched = ImageChops.multiply(stroke, rect)
    changed_outside = ImageChops.multiply(diff, untouched)
    assert changed_outside.getbbox() is None, "pixels outside the painted region changed"
    # the undone stroke along the bottom was not repainted; inside the rectangle it was
    w, h = before.size
    assert diff.crop((int(0.1 * w), int(0.85 * h), int(0.9 * w), h)).getbbox() is None
    assert diff.crop((int(0.62 * w), int(0.62 * h), int(0.78 * w), int(0.73 * h))).getbbox()
    await page.context.close()

    async def strokes(page: Any) -> None:
        await page.wait_for_function("document.getElementById('mask').width > 0")
        await paint(page, [(0.2, 0.3, 0.5, 0.3), (0.25, 0.35, 0.45, 0.4)])

    await screenshots(browser, url, "editor", strokes)
    # a submit without the page's CSRF token, or with a forged link, makes no job
    signed = url.rsplit("/", 1)[1]
    mask = io.BytesIO()
    Image.new("L", before.size, 255).save(mask, "PNG")
    import base64

    data = "data:image/png;base64," + base64.b64encode(mask.getvalue()).decode()
    bad = await client.post(f"/web/editor/{signed}", json={"mask": data, "csrf": "x"})
    assert bad.status == 403
    assert "Reload the page" in (await bad.json())["message"]
    forged = await client.post(f"/web/editor/{signed[:-3]}abc", json={"mask": data})
    assert forged.status == 403
    assert "press Vary (Region)" in (await forged.json())["message"]
    csrf = client.server.app[WEB].signer.mac("csrf", signed)
    other_site = await client.post(
        f"/web/editor/{signed}", json={"mask": data, "csrf": csrf},
        headers={"Origin": "https://evil.example"},
    )  # fmt: skip
    assert other_site.status == 403
    after_all = await (await client.get(f"/web/api/inbox?after={cursor}")).json()
    assert len(after_all["jobs"]) == 1
