"""MAX_JOBS_PER_USER: at most that many unfinished jobs per user, checked before each submit."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from bot.client import ImagineClient
from bot.delivery import Deliveries
from bot.errors import UserFacingError


class JobLimiter:
    def __init__(self, imagine: ImagineClient, deliveries: Deliveries, max_jobs: int) -> None:
        self._imagine = imagine
        self._deliveries = deliveries
        self.max_jobs = max_jobs
        self._locks: dict[int, asyncio.Lock] = {}

    async def unfinished(self, user_id: int) -> int:
        """The larger of the bot's own count and the service's (which also sees other clients)."""
        info = await self._imagine.info(user_id)
        return max(self._deliveries.in_flight(user_id), info.user_unfinished or 0)

    @contextlib.asynccontextmanager
    async def slot(self, user_id: int, jobs: int = 1) -> AsyncIterator[None]:
        """Hold while submitting, so two quick clicks cannot both pass the check."""
        # One small lock per user who ever submitted; never dropped, so waiters always share it.
        async with self._locks.setdefault(user_id, asyncio.Lock()):
            count = await self.unfinished(user_id)
            if count + jobs > self.max_jobs:
                raise UserFacingError(
                    f"You already have {count} image{'s' if count != 1 else ''} in progress "
                    f"(the limit is {self.max_jobs} per person). Wait for one to finish, then try again."
                )
            yield
