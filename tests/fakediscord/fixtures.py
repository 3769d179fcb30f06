"""pytest fixtures and helpers around the fake Discord.

Use them from a test module with `pytest_plugins = ["tests.fakediscord.fixtures"]`, or from
tests/conftest.py the same way.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.fakediscord import point_discord_py_at
from tests.fakediscord.server import FakeDiscord


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """A started fake Discord with discord.py in this process pointed at it (restored after)."""
    import discord.gateway
    import discord.http

    saved = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    fd = FakeDiscord(token="bot-token")
    await fd.start()
    point_discord_py_at(fd.api_base, fd.gateway_url)
    try:
        yield fd
    finally:
        await fd.close()
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved


class _ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def discord_errors() -> Iterator[list[logging.LogRecord]]:
    """Fails the test if discord.py logs an ERROR (an exception in a command, a view, a task) that
    the test did not take out of the list."""
    handler = _ErrorRecords()
    logger = logging.getLogger("discord")
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
    if handler.records:
        lines = [f"{r.name}: {r.getMessage()}" for r in handler.records]
        pytest.fail("discord.py logged errors:\n" + "\n".join(lines))
