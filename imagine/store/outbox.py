"""Webhooks: a durable outbox, so a restart does not drop a delivery, claimed per delivery so
that one process at a time sends it."""

from __future__ import annotations

from imagine.store.base import Tx, Unit
from imagine.store.queries import Queries


class Outbox(Queries):
    async def claim_webhooks(
        self, now: float, limit: int, hold: float, claim: str
    ) -> list[tuple[int, str, str, bytes, int]]:
        """Due deliveries, each taken under ``claim`` for ``hold`` seconds: only that claim may
        send it (see :meth:`hold_webhook`) and record its outcome. Another process takes it
        again only once the hold has run out without either."""

        async def take(tx: Tx) -> list[tuple[int, str, str, bytes, int]]:
            rows = await tx.fetch(
                "SELECT id, job_id, url, body, attempts FROM webhooks"
                " WHERE state = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ?"
                f"{self.claim_lock.replace(' OF j', '')}",
                (now, limit),
            )
            taken = [(int(r[0]), str(r[1]), str(r[2]), bytes(r[3]), int(r[4])) for r in rows]
            if taken:
                await tx.executemany(
                    "UPDATE webhooks SET next_at = ?, claim = ? WHERE id = ?",
                    [(now + hold, claim, webhook_id) for webhook_id, *_ in taken],
                )
            return taken

        result: list[tuple[int, str, str, bytes, int]] = await self.commit(Unit(take))
        return result

    async def next_webhook_at(self) -> float | None:
        rows = await self.fetch("SELECT MIN(next_at) FROM webhooks WHERE state = 'pending'")
        return None if rows[0][0] is None else float(rows[0][0])

    async def hold_webhook(self, webhook_id: int, claim: str, until: float) -> bool:
        """Right before sending: whether ``claim`` still has the delivery (then it is held until
        ``until``); False = another process took it meanwhile, or it is settled."""

        async def write(tx: Tx) -> int:
            return await tx.execute(
                "UPDATE webhooks SET next_at = ? WHERE id = ? AND claim = ? AND state = 'pending'",
                (until, webhook_id, claim),
            )

        return bool(await self.commit(Unit(write)) == 1)

    async def update_webhook(
        self, webhook_id: int, claim: str, *, state: str, attempts: int, next_at: float, error: str
    ) -> bool:
        """Record a delivery's outcome, if ``claim`` still has it; whether it did."""

        async def write(tx: Tx) -> int:
            return await tx.execute(
                "UPDATE webhooks SET state = ?, attempts = ?, next_at = ?, last_error = ?"
                " WHERE id = ? AND claim = ?",
                (state, attempts, next_at, error, webhook_id, claim),
            )

        return bool(await self.commit(Unit(write)) == 1)
