"""Run a discord.py client inside the test's event loop against the fake."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from tests.fakediscord.server import FakeDiscord


@contextlib.asynccontextmanager
async def run_bot(client: object, fd: FakeDiscord, timeout: float = 10.0) -> AsyncIterator[None]:
    """Run a discord.py client in this event loop until the block ends; wait for on_ready first.

    Give the client a small `guild_ready_timeout` (0.05) or each start waits the default 2 s.
    """
    import discord

    assert isinstance(client, discord.Client)
    task = asyncio.create_task(client.start(fd.token))
    try:
        ready = asyncio.create_task(client.wait_until_ready())
        done, _ = await asyncio.wait(
            {ready, task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if task in done:
            ready.cancel()
            task.result()  # raises the login error
            raise RuntimeError("the client stopped before it was ready")
        if ready not in done:
            ready.cancel()
            raise TimeoutError(f"the client was not ready within {timeout} s")
        yield
    finally:
        await client.close()
        with contextlib.suppress(asyncio.CancelledError):
            async with asyncio.timeout(timeout):
                await task
