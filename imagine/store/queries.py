"""What every part of the job store stands on: a backend's reads and commits, its dialect
words, and the quota arithmetic both backends' commits share.

Each backend (:mod:`imagine.store.sqlite`, :mod:`imagine.store.postgres`) supplies a
connection, a way to commit a :class:`Unit`, and three dialect words: the column that orders
jobs by arrival (``seq``), the row-lock clause of a claim, and the database's clock.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from imagine.store.base import COUNT_WAITING, LimitReached, Quota, Tx, Unit


class Queries(abc.ABC):
    """What a backend provides, and what the store's parts share."""

    seq = "rowid"
    """The column that orders jobs by arrival."""
    claim_lock = ""
    """What a claim's SELECT ends with to lock the row it takes (PostgreSQL: skip locked ones)."""
    now = "((julianday('now') - 2440587.5) * 86400.0)"
    """The database's clock in Unix seconds: leases are set and judged by one clock, so the
    clocks of the machines the workers run on need not agree."""

    # what a backend provides

    @abc.abstractmethod
    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A read, outside any write transaction."""

    @abc.abstractmethod
    async def commit(self, unit: Unit) -> Any:
        """Commit ``unit`` (its rows only if its quota allows them, else LimitReached); what its
        work returned. A failed commit raises StoreUnavailable (AlreadyExists for a duplicate)."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def watch(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` whenever another process adds jobs, until cancelled; without a way to
        hear of them (SQLite), workers look every few seconds (workers.POLL) instead."""
        del wake
        await asyncio.Event().wait()

    async def notify(self, tx: Tx) -> None:
        """Within a transaction that added jobs: tell other processes' workers, at commit."""
        del tx

    # shared by the backends' commits

    @staticmethod
    async def tallies(tx: Tx, quotas: list[Quota]) -> tuple[dict[str, int], int]:
        """Unfinished jobs per capped owner, and jobs waiting for the engine, as of now: one
        query for a burst (both counts are read from covering indexes)."""
        owners = sorted({q.owner for q in quotas if q.owner_cap is not None})
        per_owner: dict[str, int] = dict.fromkeys(owners, 0)
        waiting = 0
        wants_waiting = any(q.queue_limit is not None for q in quotas)
        for start in range(0, max(len(owners), 1), 500):  # SQLite's limit on bound parameters
            chunk = owners[start : start + 500]
            parts, args = [], list(chunk)
            if chunk:
                parts.append(
                    "SELECT owner, COUNT(*) FROM jobs WHERE status IN ('queued', 'running')"
                    f" AND owner IN ({', '.join('?' * len(chunk))}) GROUP BY owner"
                )
            if wants_waiting and start == 0:
                parts.append(f"SELECT NULL, ({COUNT_WAITING})")
            if not parts:
                break
            for owner, count in await tx.fetch(" UNION ALL ".join(parts), args):
                if owner is None:
                    waiting = int(count)
                else:
                    per_owner[str(owner)] = int(count)
        return per_owner, waiting

    @staticmethod
    def admit(
        units: Sequence[Unit], per_owner: dict[str, int], waiting: int
    ) -> list[LimitReached | None]:
        """Each unit's refusal (None = admitted), in order, counting the admitted ones."""
        outcomes: list[LimitReached | None] = []
        for unit in units:
            quota = unit.quota
            if quota is None:
                outcomes.append(None)
                continue
            refused = quota.refused(len(unit.rows), per_owner.get(quota.owner, 0), waiting)
            if refused is None:
                if quota.owner_cap is not None:
                    per_owner[quota.owner] = per_owner.get(quota.owner, 0) + len(unit.rows)
                waiting += quota.waiting
            outcomes.append(refused)
        return outcomes

    async def _count(self, sql: str, *args: Any) -> int:
        return int((await self.fetch(sql, args))[0][0])
