"""Discord answering 500 or 429 while the bot posts a result: retried, and the result still arrives."""

from __future__ import annotations

import pytest
import pytest_asyncio

from tests.e2e.conftest import BotLauncher, BotProcess
from tests.e2e.screen import GRID_LABELS, button, finished_original, labels, reply_to
from tests.fakediscord import FakeDiscord

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(launcher: BotLauncher) -> BotProcess:
    return await launcher.start(IMAGINE_PLACEHOLDER_SECONDS="0.3")


def injected(fake: FakeDiscord, pattern: str) -> int:
    return sum(1 for call in fake.calls if call.get("injected") and pattern in call["path"])


async def test_imagine_result_arrives_through_500_and_429(
    fake: FakeDiscord, bot: BotProcess
) -> None:
    fake.fail_next("PATCH", r"^/webhooks/.*/messages/@original", status=500, count=1)
    fake.fail_next(
        "PATCH", r"^/webhooks/.*/messages/@original", status=429, count=1, retry_after=0.2
    )
    inter = await fake.slash("imagine", {"prompt": "a stormy sea"})
    message = await finished_original(fake, inter)
    assert labels(message) == GRID_LABELS
    assert injected(fake, "/messages/@original") == 2  # both failures were met, and got past


async def test_button_result_arrives_through_500_and_429(
    fake: FakeDiscord, bot: BotProcess
) -> None:
    inter = await fake.slash("imagine", {"prompt": "a quiet harbour"})
    grid = await finished_original(fake, inter)
    before = injected(fake, "/channels/")
    fake.fail_next("*", r"^/channels/\d+/messages", status=500, count=1)
    fake.fail_next("*", r"^/channels/\d+/messages", status=429, count=1, retry_after=0.2)
    await fake.click(grid["id"], button(grid, "V1")["custom_id"])
    result = await reply_to(fake, grid["id"])
    assert labels(result) == GRID_LABELS
    assert injected(fake, "/channels/") - before == 2
