"""The gallery and the dashboard in a real Chromium: a member sees only their own images, even
with the URL edited; an expired link says what to do; delete removes the files; a ``<script>``
prompt is text; nothing is requested from any other host; the dashboard needs the operator token
and shows a running job and its worker. Screenshots of each page go to docs/screenshots/."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from imagine.keys import SERVICE
from imagine.settings import Settings
from imagine.web.keys import WEB
from imagine.web.signing import Link
from tests.service.conftest import submit, wait_done
from tests.web.conftest import ADMIN, open_page, screenshots
from tests.web.test_access import link

pytestmark = pytest.mark.slow
HOSTILE = "<script>window.pwned = 1</script> a <b>bold</b> cat"


def files_in(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


async def made(client: Any, prompt: str, user: str) -> str:
    data = await submit(client, prompt, ref=f'{{"user": "{user}"}}')
    await wait_done(client, data["messageId"])
    return str(data["messageId"])


async def test_a_gallery_shows_its_members_images_only(
    served: Any, browser: Any, settings: Settings
) -> None:
    client = await served()
    mine = [await made(client, f"a red fox number {n} --seed {n}", "111") for n in range(3)]
    hostile = await made(client, HOSTILE, "111")
    theirs = await made(client, "a secret blue whale", "222")
    url = str(client.make_url(await link(client, user="111")))

    page, requested = await open_page(browser, url)
    cards = page.locator("li.card")
    assert await cards.count() == 4
    text = await page.inner_text("main")
    assert "a secret blue whale" not in text
    assert text.index("a red fox number 2") < text.index("a red fox number 0")  # newest first
    assert HOSTILE in text  # shown as typed, as text
    assert await page.evaluate("window.pwned") is None
    assert await page.locator("main b").count() == 0
    # the seed, the model and a full-size link
    assert "Seed" in text
    assert "placeholder" in text
    download = cards.first.locator("a[download]")
    assert await download.get_attribute("href") == await cards.first.locator(
        "a.thumb"
    ).get_attribute("href")
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await cards.first.locator("button.copy").click()
    assert await page.evaluate("navigator.clipboard.readText()") == HOSTILE
    assert "Copied" in await cards.first.locator("button.copy").inner_text()
    full = await cards.first.locator("a.thumb").get_attribute("href")
    assert full is not None
    assert full.startswith(f"/images/{hostile}/")
    # a text filter, then a date filter that matches nothing
    await page.fill("input[name=q]", "number 1")
    await page.click("form.filters button")
    await page.wait_for_load_state()
    assert await cards.count() == 1
    await page.goto(url + "?to=2001-01-01")
    assert "Nothing matches" in await page.inner_text("main")
    assert all(r.startswith(str(client.make_url("/"))) for r in requested), requested
    await page.context.close()
    await screenshots(browser, url, "gallery")

    # an edited link: another member's id in the payload, the old signature
    token = url.rsplit("/", 1)[1]
    theirs_token = (await link(client, user="222")).rsplit("/", 1)[1]
    edited = url.replace(token, f"{theirs_token.split('.')[0]}.{token.split('.')[1]}")
    page, _ = await open_page(browser, edited)
    assert "This link does not work" in await page.inner_text("main")
    assert "a secret blue whale" not in await page.content()
    await page.context.close()

    # another member's job through one's own link: refused, nothing deleted
    csrf = client.server.app[WEB].signer.mac("csrf", token)
    response = await client.post(f"{URL_path(url)}/delete/{theirs}", data={"csrf": csrf})
    assert response.status == 404
    assert "not in your gallery" in await response.text()
    assert (settings.data_dir / "images" / theirs).is_dir()
    assert mine


def URL_path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


async def test_delete_removes_the_files_and_warns(
    served: Any, browser: Any, settings: Settings
) -> None:
    client = await served()
    gone = await made(client, "a paper boat", "111")
    kept = await made(client, "a stone bridge", "111")
    folder: Path = settings.data_dir / "images" / gone
    assert files_in(folder)
    url = str(client.make_url(await link(client, user="111")))
    page, _ = await open_page(browser, url)
    warnings: list[str] = []

    async def accept(dialog: Any) -> None:
        warnings.append(dialog.message)
        await dialog.accept()

    page.on("dialog", lambda dialog: asyncio.ensure_future(accept(dialog)))
    card = page.locator(f"li.card[data-job='{gone}']")
    await card.locator("form.delete button").click()
    await page.wait_for_url("**deleted=1")
    assert "stop working" in warnings[0]
    assert "Deleted" in await page.inner_text("main")
    assert await page.locator(f"li.card[data-job='{gone}']").count() == 0
    assert await page.locator(f"li.card[data-job='{kept}']").count() == 1
    assert not files_in(folder)
    assert (await client.get(f"/images/{gone}/grid.jpg")).status == 404
    # a form without this page's CSRF token is refused
    response = await client.post(f"{URL_path(url)}/delete/{kept}", data={"csrf": "nope"})
    assert response.status == 403
    await page.context.close()


async def test_an_expired_link_says_what_to_do(served: Any, browser: Any) -> None:
    client = await served()
    signed = client.server.app[WEB].signer.sign(Link("gallery", "111", "local", time.time() - 5))
    url = str(client.make_url(f"/web/gallery/{signed}"))
    page, _ = await open_page(browser, url)
    text = await page.inner_text("main")
    assert "This link has expired" in text
    assert "Run /gallery in Discord again" in text
    await page.context.close()
    await screenshots(browser, url, "expired")


async def test_the_dashboard_shows_the_running_job_and_its_worker(
    served: Any, browser: Any
) -> None:
    client = await served(placeholder_seconds=30.0)
    running = await submit(client, "a slow mountain", ref='{"user": "333"}')
    waiting = await submit(client, "a patient river", ref='{"user": "444"}')
    url = str(client.make_url("/admin"))
    page, requested = await open_page(browser, url)
    assert "Operator dashboard" in await page.inner_text("main")
    await screenshots(browser, url, "login")
    await page.fill("input[name=token]", ADMIN)
    await page.click("form button[type=submit]")
    await page.wait_for_url(url)
    async with asyncio.timeout(10):
        while "a slow mountain" not in await page.content():
            await asyncio.sleep(0.2)
            await page.reload()
    rows = page.locator("tr", has_text="a slow mountain")
    row = await rows.first.inner_text()
    assert running["messageId"][-8:] in row
    workers = await page.locator("h2:has-text('Workers') + div").inner_text()
    assert "placeholder" in workers
    [beat] = await client.server.app[SERVICE].store.workers(60)
    assert beat.id in row  # the worker that renders it
    assert beat.id in workers
    assert running["messageId"][-8:] in workers  # its current job
    assert "a patient river" in await page.inner_text("main")
    await screenshots_logged_in(browser, url, page)
    # cancel the waiting job from the page
    await page.locator("tr", has_text="a patient river").locator("button").click()
    await page.wait_for_url("**done=cancelled")
    assert "a patient river" not in await page.locator("h2:has-text('Waiting') + *").inner_text()
    message = await (await client.get(f"/v2/message/{waiting['messageId']}")).json()
    assert message["response"]["content"] == "CANCELLED"
    assert all(r.startswith(str(client.make_url("/"))) for r in requested), requested
    await client.post("/v2/cancel", json={"messageId": running["messageId"]})
    await page.context.close()


async def screenshots_logged_in(browser: Any, url: str, page: Any) -> None:
    cookies = await page.context.cookies()
    from tests.web.conftest import SCREENSHOTS, WIDTHS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, width in WIDTHS.items():
        context = await browser.new_context(viewport={"width": width, "height": 900})
        await context.add_cookies(cookies)
        shot = await context.new_page()
        await shot.goto(url)
        await shot.screenshot(path=str(SCREENSHOTS / f"admin-{label}.png"), full_page=True)
        await context.close()
