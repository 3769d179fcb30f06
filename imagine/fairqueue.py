"""A bounded queue that is fair across users.

Jobs wait in two tiers: fast, then relax (a user's own choice to wait). ``--turbo`` counts as
fast: a flag anyone can type must not let them jump everyone else. Within a tier, owners take turns: each turn
serves the oldest job of the owner at the front, then that owner goes to the back. So one user's
ten jobs never hold back another user's first, and with many users queued at once every user's
first job starts before anyone's second.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque

TIERS = {"fast": 0, "relax": 1}
DEFAULT_TIER = TIERS["fast"]


def tier_for(speed: str | None) -> int:
    """--relax waits behind everyone; --fast, --turbo and nothing are all the fast tier."""
    return TIERS["relax"] if speed == "relax" else DEFAULT_TIER


class FairQueue:
    def __init__(self) -> None:
        self._tiers: list[OrderedDict[str, deque[str]]] = [OrderedDict() for _ in TIERS]
        self._where: dict[str, tuple[int, str]] = {}
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, job_id: str) -> bool:
        return job_id in self._where

    def push(self, job_id: str, owner: str, tier: int = DEFAULT_TIER) -> None:
        tier = min(max(tier, 0), len(self._tiers) - 1)
        self._tiers[tier].setdefault(owner, deque()).append(job_id)
        self._where[job_id] = (tier, owner)
        self._ready.set()

    def pop(self) -> str | None:
        for owners in self._tiers:
            if not owners:
                continue
            owner, jobs = next(iter(owners.items()))
            job_id = jobs.popleft()
            del owners[owner]
            if jobs:
                owners[owner] = jobs  # to the back of the line
            del self._where[job_id]
            if not self._where:
                self._ready.clear()
            return job_id
        return None

    async def get(self) -> str:
        while True:
            job_id = self.pop()
            if job_id is not None:
                return job_id
            self._ready.clear()
            await self._ready.wait()

    def position(self, job_id: str) -> int | None:
        """How many jobs start before this one (0 = next), by replaying the turn order."""
        where = self._where.get(job_id)
        if where is None:
            return None
        tier, owner = where
        ahead = sum(len(jobs) for owners in self._tiers[:tier] for jobs in owners.values())
        owners = self._tiers[tier]
        rank = owners[owner].index(job_id)
        # Owners before ours in the turn order get rank + 1 turns first; owners after get rank.
        passed_ours = False
        for other, jobs in owners.items():
            if other == owner:
                passed_ours = True
                continue
            ahead += min(len(jobs), rank if passed_ours else rank + 1)
        return ahead + rank
