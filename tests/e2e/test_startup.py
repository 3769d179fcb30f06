"""Start-up through ``python -m bot`` alone (no other bot connected): the service unreachable is
said plainly; a missing or rejected token stops the bot with exit code 2 and one line on how to
get one; Discord out of reach is one line per try, and the bot keeps trying until it is back."""

from __future__ import annotations

import re
import socket

import pytest

from tests.e2e.conftest import READY_TIMEOUT, BotLauncher, BotProcess
from tests.e2e.screen import COMMANDS, refused
from tests.fakediscord import FakeDiscord

pytestmark = pytest.mark.asyncio(loop_scope="module")


def closed_port() -> int:
    with socket.socket() as sock:  # a port on which nothing listens
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def tries(bot: BotProcess, words: str) -> list[str]:
    return [line for line in bot.lines if words in line]


async def spawn_towards(launcher: BotLauncher, port: int, token: str, guild: str) -> BotProcess:
    return await launcher.spawn(
        dotenv=f"DISCORD_TOKEN={token}\n",
        DISCORD_API_BASE=f"http://127.0.0.1:{port}/api/v10",
        DISCORD_GATEWAY_URL=f"ws://127.0.0.1:{port}/gateway",
        DISCORD_GUILD_IDS=guild,
        BOT_LOGIN_RETRY_FIRST="0.1",
        BOT_LOGIN_RETRY_MAX="0.4",
    )


async def test_discord_out_of_reach_is_one_line_per_try_until_it_is_back(
    fake: FakeDiscord, launcher: BotLauncher
) -> None:
    port = closed_port()
    later = FakeDiscord(token="patient-token", port=port)
    address = f"http://127.0.0.1:{port}/api/v10"
    bot = await spawn_towards(launcher, port, later.token, later.guild_id)
    try:
        await fake.wait_for(lambda: len(tries(bot, "Cannot reach Discord")) >= 4, READY_TIMEOUT)
        assert bot.process.returncode is None  # still alive, as a supervised service should be
        lines = [line for line in bot.lines if line.strip()]
        assert not [line for line in lines if "Traceback" in line or line.startswith("  File")]
        sentences = tries(bot, "Cannot reach Discord")[:4]
        for number, line in enumerate(sentences, 1):
            assert (
                f"bot: Cannot reach Discord at {address}: the connection was refused; check the "
                "network connection, a firewall or proxy, and DISCORD_API_BASE. Trying again in "
            ) in line
            assert line.endswith(f"(try {number}).")
        waits = [float(re.findall(r"again in ([\d.]+) s", line)[0]) for line in sentences]
        assert waits == [0.1, 0.2, 0.4, 0.4]  # growing, up to BOT_LOGIN_RETRY_MAX
        assert len(lines[: lines.index(sentences[-1]) + 1]) == 5  # one line a try (+ logging in)

        async with later:  # Discord is back, where the bot kept looking for it
            await later.wait_for_session(1, READY_TIMEOUT)
            names = sorted(c["name"] for c in later.registered_commands(later.guild_id))
            assert names == COMMANDS
        # Discord goes away again while the bot runs: discord.py reconnects by itself, and says
        # so in one line each time (it logs an ERROR with a traceback by default)
        gateway = f"ws://127.0.0.1:{port}/gateway"
        lost = await fake.wait_for(lambda: tries(bot, "lost the connection"), READY_TIMEOUT)
        assert (
            f"[WARNING ] discord.client: lost the connection to Discord's gateway {gateway} ("
            in (lost[0])
        )
        assert "); reconnecting in " in lost[0]
        assert not [line for line in bot.lines if "Traceback" in line or line.startswith("  File")]
        assert bot.process.returncode is None
    finally:
        assert await bot.stop() == 0


async def test_a_stop_while_discord_is_out_of_reach_exits_0(
    fake: FakeDiscord, launcher: BotLauncher
) -> None:
    bot = await spawn_towards(launcher, closed_port(), "any-token", fake.guild_id)
    await fake.wait_for(lambda: tries(bot, "Cannot reach Discord"), READY_TIMEOUT)
    assert await bot.stop(timeout=5.0) == 0


async def test_discord_5xx_at_login_is_one_line_and_retried(
    fake: FakeDiscord, launcher: BotLauncher
) -> None:
    fake.fail_next("GET", r"^/users/@me$", status=503, count=2)
    bot = await launcher.start(BOT_LOGIN_RETRY_FIRST="0.1")
    try:
        sentences = tries(bot, "at login")
        assert len(sentences) == 2
        assert sentences[0].endswith(
            f"bot: Discord at {fake.api_base} answered 503 Service Unavailable at login: a problem "
            "on Discord's side (see https://discordstatus.com). Trying again in 0.1 s (try 1)."
        )
        assert not tries(bot, "Traceback")
    finally:
        assert await bot.stop() == 0


async def test_unreachable_service_is_said_plainly(
    fake: FakeDiscord, launcher: BotLauncher
) -> None:
    lonely = await launcher.start(IMAGINE_API_URL=f"http://127.0.0.1:{closed_port()}")
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
        assert names == COMMANDS
        [error] = bot.new_errors()  # expected: the sentence, and no traceback with it
        assert f"could not sync commands to server {stranger}" in error
        assert "applications.commands" in error
        assert "Traceback" not in error
        [refusal] = [e for e in fake.errors if stranger in e["path"]]
        assert refusal["status"] == 403
        fake.errors.remove(refusal)
    finally:
        assert await bot.stop() == 0


async def test_auto_without_a_model_starts_on_the_placeholder_and_info_says_why(
    fake: FakeDiscord, launcher: BotLauncher
) -> None:
    empty = launcher.home / "empty-hf-cache"
    empty.mkdir(exist_ok=True)
    bot = await launcher.start(IMAGINE_ENGINE="auto", HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(empty))
    try:
        info = await fake.slash("info")
        text = await fake.wait_for(
            lambda: (
                info.original if info.original and "Engine" in info.original["content"] else None
            )
        )
        assert "**Engine:** placeholder" in text["content"]
        assert "IMAGINE_ENGINE=auto fell back to the placeholder because" in text["content"]
    finally:
        assert await bot.stop() == 0
