"""Group commit, for both databases: writes that arrive while a transaction is being committed
wait and go together in the next one.

One writer per process: no coroutine ever sees another's half-done transaction, and a burst of
submissions costs one transaction (one quota check, one insert, one commit), not one each.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from imagine.store.base import INSERT_JOBS, LimitReached, StoreError, StoreUnavailable, Tx, Unit
from imagine.store.jobstore import JobStore

log = logging.getLogger(__name__)


class GroupCommitStore(JobStore):
    def __init__(self) -> None:
        self._pending: list[tuple[Unit, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

    @abc.abstractmethod
    async def _apply(self, units: Sequence[Unit]) -> list[Any]:
        """Run ``units`` in one transaction and commit it (see :meth:`_run_units`); raise, with
        the transaction rolled back, if any part fails."""

    @abc.abstractmethod
    def _error(self, exc: Exception) -> StoreError:
        """What a unit's caller is told when its own transaction failed with ``exc``."""

    async def _run_units(self, tx: Tx, units: Sequence[Unit]) -> list[Any]:
        """Within the transaction: check the quotas against counts read now (one query for the
        burst), insert the admitted units' rows (one executemany), then run each unit's work."""
        quotas = [unit.quota for unit in units if unit.quota is not None]
        per_owner, waiting = await self.tallies(tx, quotas) if quotas else ({}, 0)
        refusals = self.admit(units, per_owner, waiting)
        rows = [row for unit, no in zip(units, refusals, strict=True) if no is None
                for row in unit.rows]  # fmt: skip
        if rows:
            await tx.executemany(INSERT_JOBS, rows)
        results: list[Any] = []
        for unit, refusal in zip(units, refusals, strict=True):
            if refusal is not None:
                results.append(refusal)
            else:
                results.append(await unit.work(tx) if unit.work else None)
        return results

    async def commit(self, unit: Unit) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((unit, future))
        if self._flusher is None or self._flusher.done():
            # its own task: a caller cancelled mid-commit must not strand the others' writes
            self._flusher = asyncio.create_task(self._drain())
        return await asyncio.shield(future)

    async def _settle(self) -> None:
        """Wait for the writes in progress (before closing)."""
        if self._flusher is not None:
            await self._flusher

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._flush(batch)
            except StoreUnavailable as exc:  # the database is unreachable: no unit can go
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            except Exception:
                # One unit spoiled the shared transaction: give each its own, so only it fails.
                log.warning(
                    "a group commit of %d writes failed; writing them one by one", len(batch)
                )
                for entry in batch:
                    await self._flush([entry])
            finally:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(
                            StoreUnavailable("The job database could not commit this write.")
                        )

    async def _flush(self, batch: list[tuple[Unit, asyncio.Future[Any]]]) -> None:
        try:
            results = await self._apply([unit for unit, _ in batch])
        except Exception as exc:
            if len(batch) > 1:
                raise
            batch[0][1].set_exception(self._error(exc))
            return
        for (_, future), outcome in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(outcome, LimitReached):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
