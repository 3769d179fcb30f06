"""The end-to-end harness: the real ``python -m bot`` in a subprocess against the fake Discord.

Why a subprocess: it is exactly what ``make run`` and the Dockerfile start (``.env`` reading,
logging set-up, signal handling, exit codes, the embedded service in the bot's process), and a
restart is a real one: nothing in memory survives, so old buttons must work from their
custom_id and pending jobs from the bot's SQLite file. Start-up costs about a second.

Every line the bot logs at ERROR (discord.py's "Ignoring exception in ...", or ours) fails the
test during which it was written.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

with warnings.catch_warnings():
    # discord.py imports audioop (voice), deprecated since Python 3.11; pytest runs with -W error
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord  # noqa: F401

from tests.fakediscord import FakeDiscord

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 15.0
ANSI = re.compile(r"\x1b\[[0-9;]*m")
RECORD_START = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:]+\] \[(?P<level>[A-Z]+) *\]")


def logged_errors(lines: list[str]) -> list[str]:
    """The ERROR and CRITICAL records among log lines, each joined with its traceback lines."""
    errors: list[str] = []
    for index, line in enumerate(lines):
        record = RECORD_START.match(line)
        if record is None or record["level"] not in ("ERROR", "CRITICAL"):
            continue
        following = []
        for more in lines[index + 1 :]:
            if RECORD_START.match(more):
                break
            following.append(more)
        errors.append("\n".join([line, *following]))
    return errors


@dataclass
class BotProcess:
    """One ``python -m bot`` and everything it wrote to stderr."""

    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    checked: int = 0
    """Lines before this index were already checked for errors."""
    _reader: asyncio.Task[None] | None = None

    def start_reading(self) -> None:
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            self.lines.append(ANSI.sub("", raw.decode("utf-8", "replace").rstrip("\n")))

    def new_errors(self) -> list[str]:
        """ERROR records (each with its traceback) written since the last call."""
        fresh, self.checked = self.lines[self.checked :], len(self.lines)
        return logged_errors(fresh)

    def log_text(self) -> str:
        return "\n".join(self.lines)

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        try:
            async with asyncio.timeout(timeout):
                code = await self.process.wait()
        except TimeoutError:
            self.process.kill()
            code = await self.process.wait()
        if self._reader is not None:
            await self._reader
        keep = os.environ.get("E2E_LOG_DIR")  # for debugging: keep every bot's whole log
        if keep:
            path = Path(keep) / f"bot-{self.process.pid}.log"
            path.write_text(self.log_text(), encoding="utf-8")
        return code


@dataclass
class BotLauncher:
    fd: FakeDiscord
    home: Path
    processes: list[BotProcess] = field(default_factory=list)

    def environment(self, **overrides: str | None) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(REPO),
            "DISCORD_API_BASE": self.fd.api_base,
            "DISCORD_GATEWAY_URL": self.fd.gateway_url,
            "DISCORD_GUILD_IDS": self.fd.guild_id,
            "IMAGINE_DATA_DIR": str(self.home / "data"),
            "IMAGINE_ENGINE": "placeholder",
            "IMAGINE_ALLOW_PRIVATE_URLS": "1",  # the fake CDN serves attachments on 127.0.0.1
            "IMAGINE_MAX_CONCURRENT": "2",
            "BOT_GUILD_READY_TIMEOUT": "0.05",
            "BOT_POLL_INTERVAL": "0.05",
            "BOT_EDIT_INTERVAL": "0.25",
        }
        for name, value in overrides.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    async def spawn(self, dotenv: str = "", **overrides: str | None) -> BotProcess:
        """Start ``python -m bot`` in ``home`` (where its .env is read from)."""
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / ".env").write_text(dotenv, encoding="utf-8")
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            cwd=self.home,
            env=self.environment(**overrides),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        bot = BotProcess(process)
        bot.start_reading()
        self.processes.append(bot)
        return bot

    async def start(self, **overrides: str | None) -> BotProcess:
        """A bot that logged in (token from .env), synced, and identified on the gateway."""
        sessions = len(self.fd.sessions)
        bot = await self.spawn(dotenv=f"DISCORD_TOKEN={self.fd.token}\n", **overrides)
        waiting = asyncio.create_task(self.fd.wait_for_session(sessions + 1, READY_TIMEOUT))
        exited = asyncio.create_task(bot.process.wait())
        done, _ = await asyncio.wait({waiting, exited}, return_when=asyncio.FIRST_COMPLETED)
        if exited in done:
            waiting.cancel()
            await bot.stop()
            pytest.fail(f"the bot exited with {bot.process.returncode}:\n{bot.log_text()}")
        exited.cancel()
        waiting.result()
        return bot

    async def close(self) -> None:
        for bot in self.processes:
            await bot.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token="e2e-bot-token") as fd:
        yield fd


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def launcher(
    fake: FakeDiscord, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[BotLauncher]:
    launcher = BotLauncher(fake, tmp_path_factory.mktemp("bot-home"))
    yield launcher
    await launcher.close()


@pytest.fixture(autouse=True)
def no_logged_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if any bot process logged an ERROR while it ran, or if the fake Discord
    refused a call (a broken rule) that the test did not take out of ``fake.errors``."""
    if "launcher" not in request.fixturenames:
        yield
        return
    launcher: BotLauncher = request.getfixturevalue("launcher")
    for bot in launcher.processes:
        bot.new_errors()  # earlier tests' lines are theirs
    refused_before = len(launcher.fd.errors)
    yield
    errors = [error for bot in launcher.processes for error in bot.new_errors()]
    if errors:
        pytest.fail("the bot logged errors:\n" + "\n\n".join(errors))
    refused = launcher.fd.errors[refused_before:]
    if refused:
        pytest.fail("the fake Discord refused calls:\n" + "\n".join(map(str, refused)))


@contextlib.contextmanager
def fake_rule(fd: FakeDiscord, **values: Any) -> Iterator[None]:
    """Change a fake Discord setting (token_life, ack_deadline) for one block."""
    saved = {name: getattr(fd, name) for name in values}
    for name, value in values.items():
        setattr(fd, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(fd, name, value)
