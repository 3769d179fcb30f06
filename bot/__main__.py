"""``python -m bot``: read ``.env``, start the bot, stop cleanly on Ctrl-C or SIGTERM.

Exit codes: 0 after a clean stop, 2 when the configuration is wrong (missing or rejected
DISCORD_TOKEN, a bad setting, an engine that cannot start); one line on stderr says what to do.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import discord
import yarl
from dotenv import find_dotenv, load_dotenv

from bot.app import ImagineBot
from bot.embedded import StartupError
from bot.settings import TOKEN_HELP, BotSettings, SettingsError

log = logging.getLogger("bot")


def point_discord_at(settings: BotSettings) -> None:
    """Redirect discord.py to another API and gateway (a REST proxy, or the tests' fake Discord)."""
    if settings.discord_api_base:
        discord.http.Route.BASE = settings.discord_api_base
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


async def run(settings: BotSettings) -> None:
    bot = ImagineBot(settings)
    loop = asyncio.get_running_loop()
    closing: list[asyncio.Task[None]] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: closing.append(loop.create_task(bot.close())))
    async with bot:
        await bot.start(settings.discord_token)
    await asyncio.gather(*closing)


def configure_logging(level: str) -> None:
    """discord.py's set-up; plain text when stderr is not a terminal (log files, docker logs)."""
    plain = logging.Formatter(
        "[{asctime}] [{levelname:<8}] {name}: {message}", "%Y-%m-%d %H:%M:%S", style="{"
    )
    formatter = discord.utils.MISSING if sys.stderr.isatty() else plain
    discord.utils.setup_logging(level=getattr(logging, level), formatter=formatter, root=True)


def fail(message: str) -> None:
    print(f"imagine-bot: {message}", file=sys.stderr)
    raise SystemExit(2)


def main() -> None:
    load_dotenv(find_dotenv(usecwd=True))
    try:
        settings = BotSettings.from_env()
    except SettingsError as exc:
        fail(str(exc))
        return
    configure_logging(settings.log_level)
    point_discord_at(settings)
    try:
        asyncio.run(run(settings))
    except discord.LoginFailure:
        fail(f"Discord rejected DISCORD_TOKEN. {TOKEN_HELP}")
    except StartupError as exc:
        fail(str(exc))


if __name__ == "__main__":
    main()
