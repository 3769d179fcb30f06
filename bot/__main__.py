"""``python -m bot``: read ``.env``, start the bot, stop cleanly on Ctrl-C or SIGTERM.

Exit codes: 0 after a clean stop, 2 when the configuration is wrong (missing or rejected
DISCORD_TOKEN, a bad setting, an engine that cannot start); one line on stderr says what to do.
Discord out of reach at start (no network, DNS, a refused connection, Discord 5xx) is not a
configuration error: one line per try, and the bot tries again with growing waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

import discord
import yarl
from dotenv import find_dotenv, load_dotenv

from bot.app import ImagineBot, create_bot
from bot.embedded import StartupError
from bot.login import Backoff, QuietRetries, api_address, is_unreachable, seconds, why_unreachable
from bot.settings import TOKEN_HELP, BotSettings, SettingsError
from imagine import logs

log = logging.getLogger("bot")


def point_discord_at(settings: BotSettings) -> None:
    """Redirect discord.py to another API and gateway (a REST proxy, or the tests' fake Discord)."""
    if settings.discord_api_base:
        discord.http.Route.BASE = settings.discord_api_base
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


async def run(settings: BotSettings) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    current: list[ImagineBot] = []
    closing: list[asyncio.Task[None]] = []

    def stop() -> None:
        stopping.set()
        if current:
            closing.append(loop.create_task(current[0].close()))

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    waits = Backoff(settings.login_retry_first, settings.login_retry_max)
    address, tries = api_address(), 0
    while not stopping.is_set():
        # A fresh client per try: a closed discord.py client cannot log in again, and a failed
        # login never reached setup_hook, so nothing else was started.
        bot = create_bot(settings)
        current[:] = [bot]
        tries += 1
        try:
            async with bot:
                await bot.start(settings.discord_token)
            break
        except Exception as exc:
            if stopping.is_set():  # stopped mid-login: whatever the aborted call raised
                log.info("stopped while logging in (%s)", type(exc).__name__)
                break
            if not is_unreachable(exc):
                raise
            wait = waits.next()
            why = why_unreachable(exc, address, custom_base=bool(settings.discord_api_base))
            log.warning("%s Trying again in %s (try %d).", why, seconds(wait), tries)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await stopping.wait()
    await asyncio.gather(*closing)


def configure_logging(level: str) -> None:
    """discord.py's set-up; plain text when stderr is not a terminal (log files, docker logs)."""
    plain = logging.Formatter(
        "[{asctime}] [{levelname:<8}] {name}: {message}", "%Y-%m-%d %H:%M:%S", style="{"
    )
    formatter = discord.utils.MISSING if sys.stderr.isatty() else plain
    discord.utils.setup_logging(level=getattr(logging, level), formatter=formatter, root=True)
    logs.install()  # a prompt or a name with a line break cannot forge log lines


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
    gateway = str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    logging.getLogger("discord.client").addFilter(QuietRetries(gateway))
    try:
        asyncio.run(run(settings))
    except discord.LoginFailure:
        fail(f"Discord rejected DISCORD_TOKEN. {TOKEN_HELP}")
    except discord.HTTPException as exc:
        fail(
            f"Discord at {api_address()} refused the login with {exc.status} "
            f"{exc.text or exc.response.reason or ''}".rstrip()
            + ": check DISCORD_API_BASE if it is set, and the application in the Developer Portal."
        )
    except StartupError as exc:
        fail(str(exc))


if __name__ == "__main__":
    main()
