"""A semaphore per key (a receiving origin, a message being edited), kept only while in use.

asyncio has none, and a dict of semaphores that is never emptied grows with every key ever seen.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class KeyedSemaphores:
    def __init__(self, value: int = 1) -> None:
        self._value = value
        self._held: dict[str, tuple[asyncio.Semaphore, int]] = {}
        """Per key: its semaphore, and how many hold or wait for it."""

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        semaphore, users = self._held.get(key, (asyncio.Semaphore(self._value), 0))
        self._held[key] = (semaphore, users + 1)
        try:
            async with semaphore:
                yield
        finally:
            semaphore, users = self._held[key]
            if users <= 1:
                del self._held[key]
            else:
                self._held[key] = (semaphore, users - 1)

    def __len__(self) -> int:
        return len(self._held)
