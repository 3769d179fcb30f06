"""Start-up through ``python -m bot`` alone (no other bot connected): the service unreachable is
said plainly; a missing or rejected token stops the bot with exit code 2 and one line on how to
get one."""

from __future__ import annotations

import socket

import pytest

from tests.e2e.conftest import BotLauncher
from tests.e2e.screen import refused
from tests.fakediscord import FakeDiscord

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_unreachable_service_is_said_plainly(
    fake: FakeDiscord, launcher: BotLauncher
) -> None:
    with socket.socket() as sock:  # a port on which nothing listens
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    lonely = await launcher.start(IMAGINE_API_URL=f"http://127.0.0.1:{closed}")
    try:
        text = await refused(fake, "a lighthouse")
        assert text == "The image service can't be reached right now. Try again in a minute."
    finally:
        assert await lonely.stop() == 0


async def test_missing_token_exits_2_with_how_to_get_one(launcher: BotLauncher) -> None:
    bot = await launcher.spawn(dotenv="")
    assert await bot.process.wait() == 2
    await bot.stop()
    [line] = [line for line in bot.lines if line.strip()]
    assert line.startswith("imagine-bot: DISCORD_TOKEN is not set.")
    assert "Developer Portal" in line
    assert "Reset Token" in line


async def test_rejected_token_exits_2(fake: FakeDiscord, launcher: BotLauncher) -> None:
    bot = await launcher.spawn(dotenv="DISCORD_TOKEN=not-the-right-one\n")
    assert await bot.process.wait() == 2
    await bot.stop()
    assert bot.lines[-1].startswith("imagine-bot: Discord rejected DISCORD_TOKEN.")
    assert "Reset Token" in bot.lines[-1]
    [refusal] = [e for e in fake.errors if e["path"] == "/users/@me" and e["status"] == 401]
    fake.errors.remove(refusal)  # expected: the harness flags every other refused call


async def test_a_server_it_cannot_sync_is_named_and_the_others_still_work(
    fake: FakeDiscord, launcher: BotLauncher
) -> None:
    fake.world.commands.pop(fake.guild_id, None)  # what an earlier bot synced
    stranger = "123456789012345678"  # a server the bot was never invited to
    bot = await launcher.start(DISCORD_GUILD_IDS=f"{stranger},{fake.guild_id}")
    try:
        names = sorted(c["name"] for c in fake.registered_commands(fake.guild_id))
        assert names == ["blend", "help", "imagine", "info", "sync"]
        [error] = bot.new_errors()  # expected: the sentence, and no traceback with it
        assert f"could not sync commands to server {stranger}" in error
        assert "applications.commands" in error
        assert "Traceback" not in error
        [refusal] = [e for e in fake.errors if stranger in e["path"]]
        assert refusal["status"] == 403
        fake.errors.remove(refusal)
    finally:
        assert await bot.stop() == 0
