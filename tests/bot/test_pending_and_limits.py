"""The pending-delivery store and the pressed-button record (real SQLite), and the per-user job
limit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import discord
import pytest

from bot.client import ImagineClient
from bot.delivery import Deliveries
from bot.errors import UserFacingError
from bot.limits import JobLimiter
from bot.pending import PendingJob, PendingStore
from bot.pressed import PressedButtons
from bot.settings import BotSettings
from cogs.buttons import result_view
from tests.bot.stub_service import StubService


def pending(job_id: str) -> PendingJob:
    return PendingJob(job_id, "a cat", "", 1, None, 2, 3, "tok", 10.0, message_id=4, created=5.0)


async def test_store_survives_reopening(tmp_path: Path) -> None:
    store = await PendingStore.open(tmp_path / "sub" / "p.sqlite3")
    await store.put(pending("a"))
    await store.put(pending("b"))
    await store.put(pending("a").with_(message_id=99))
    await store.remove("b")
    await store.close()

    reopened = await PendingStore.open(tmp_path / "sub" / "p.sqlite3")
    try:
        assert await reopened.all() == [pending("a").with_(message_id=99)]
    finally:
        await reopened.close()


async def test_limit_counts_the_services_unfinished_jobs(
    tmp_path: Path, stub: StubService, imagine: ImagineClient
) -> None:
    store = await PendingStore.open(tmp_path / "p.sqlite3")
    settings = BotSettings(discord_token="t", data_dir=tmp_path)
    deliveries = Deliveries(
        discord.Client(intents=discord.Intents.default()), imagine, store, settings, result_view
    )
    limiter = JobLimiter(imagine, deliveries, max_jobs=3)
    try:
        stub.info_answer = {"userUnfinished": 2}
        async with limiter.slot(42):
            pass
        stub.info_answer = {"userUnfinished": 3}
        with pytest.raises(
            UserFacingError, match=r"already have 3 images in progress \(the limit is 3"
        ):
            async with limiter.slot(42):
                pass
    finally:
        await store.close()


async def test_pressed_buttons_are_kept_and_edits_are_taken_in_turn(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite3"
    pressed = await PressedButtons.open(path)
    seen: list[frozenset[str]] = []

    async def press(button: str) -> None:
        async with pressed.editing("grid1"):
            used = await pressed.add("grid1", button)
            await asyncio.sleep(0.01)  # an edit on Discord, while the other press waits
            seen.append(used)

    await asyncio.gather(press("U1"), press("U2"))
    assert seen[-1] == {"U1", "U2"}  # the last edit written knows both presses
    assert await pressed.add("grid2", "U4") == {"U4"}  # results are apart
    assert len(pressed._locks) == 0  # nothing kept in memory once nobody is editing
    await pressed.close()

    reopened = await PressedButtons.open(path)  # a restart
    assert await reopened.add("grid1", "U3") == {"U1", "U2", "U3"}
    await reopened.close()
