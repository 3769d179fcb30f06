"""Custom Zoom through the real bot on the fake Discord: the button opens a modal (the first
answer, within 3 s) with the prompt and ``--zoom 2``; its submit zooms out by the factor typed,
and a factor outside 1–2 is refused with the prompt given back."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.conftest import BotLauncher
from tests.e2e.screen import button, finished_original, image, labels, private_notice, reply_to
from tests.fakediscord import FakeDiscord

pytestmark = pytest.mark.asyncio(loop_scope="module")
JSON = dict[str, Any]
MODAL = 9


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def upscale(fake: FakeDiscord, launcher: BotLauncher) -> JSON:
    await launcher.start(IMAGINE_PLACEHOLDER_SECONDS="0.1")
    inter = await fake.slash("imagine", {"prompt": "a tiny island --seed 11"})
    grid = await finished_original(fake, inter)
    await fake.click(grid["id"], button(grid, "U1")["custom_id"])
    return await reply_to(fake, grid["id"])


def prompt_input(modal: JSON) -> JSON:
    row = modal["components"][0]
    return row["components"][0] if row["type"] == 1 else row["component"]


async def test_custom_zoom_opens_a_prefilled_modal_and_zooms_out(
    fake: FakeDiscord, upscale: JSON
) -> None:
    assert "Custom Zoom" in labels(upscale)
    click = await fake.click(upscale["id"], button(upscale, "Custom Zoom")["custom_id"])
    await fake.wait_for(lambda: click.modal, 5.0)
    assert click.response_type == MODAL
    assert click.ack_delay is not None
    assert click.ack_delay < 3.0
    text = prompt_input(click.modal)
    assert text["value"] == "a tiny island --seed 11 --zoom 2"

    submit = await fake.submit_modal(click, {"prompt": "a tiny island at night --zoom 1.5"})
    zoomed = await reply_to(fake, upscale["id"])
    assert submit.ack_delay is not None
    assert submit.ack_delay < 3.0
    assert zoomed["content"].startswith("**a tiny island at night --zoom 1.5")
    assert "Custom Zoom by" in zoomed["content"]
    assert "U1" in labels(zoomed)  # a zoom is a new grid
    grid, _ = await image(fake, zoomed)
    assert grid.width == grid.height  # the same square shape, zoomed out


async def test_a_zoom_outside_one_to_two_is_refused_with_the_prompt_given_back(
    fake: FakeDiscord, upscale: JSON
) -> None:
    public = lambda: [m for m in fake.messages() if not int(m["flags"]) & 64]  # noqa: E731
    before = len(public())
    for typed in ("a tiny island --zoom 3", "a tiny island without a factor"):
        click = await fake.click(upscale["id"], button(upscale, "Custom Zoom")["custom_id"])
        await fake.wait_for(lambda c=click: c.modal, 5.0)  # type: ignore[misc]
        submit = await fake.submit_modal(click, {"prompt": typed})
        notice = await private_notice(fake, submit)
        assert "from 1 to 2" in notice["content"]
        assert typed.split(" --")[0] in notice["content"]
    assert len(public()) == before  # nothing was posted in the channel
