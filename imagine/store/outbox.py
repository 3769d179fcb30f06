"""Webhooks: a durable outbox, so a restart does not drop a delivery, claimed per delivery so
that one process at a time sends it. Due times are the database's clock (like leases), so the
clocks of the machines that send need not agree; callers pass seconds from now."""

from __future__ import annotations

from collections.abc import Collection

from imagine.store.base import Tx, Unit
from imagine.store.queries import Queries


class Outbox(Queries):
    async def claim_webhooks(
        self, limit: int, hold: float, claim: str, keep: Collection[int] = ()
    ) -> list[tuple[int, str, str, bytes, int]]:
        """Due deliveries, each taken under ``claim`` for ``hold`` seconds: only that claim may
        send it (see :meth:`hold_webhook`) and record its outcome. Another process takes it
        again only once the hold has run out without either. ``keep``: deliveries this process
        is sending already (their claims stay as they are)."""
        kept = sorted(keep)
        skip = f" AND id NOT IN ({', '.join('?' * len(kept))})" if kept else ""

        async def take(tx: Tx) -> list[tuple[int, str, str, bytes, int]]:
            rows = await tx.fetch(
                "SELECT id, job_id, url, body, attempts FROM webhooks"
                f" WHERE state = 'pending' AND next_at <= {self.now}{skip}"
                f" ORDER BY next_at LIMIT ?{self.claim_lock.replace(' OF j', '')}",
                (*kept, limit),
            )
            taken = [(int(r[0]), str(r[1]), str(r[2]), bytes(r[3]), int(r[4])) for r in rows]
            if taken:
                await tx.executemany(
                    f"UPDATE webhooks SET next_at = {self.now} + ?, claim = ? WHERE id = ?",
                    [(float(hold), claim, webhook_id) for webhook_id, *_ in taken],
                )
            return taken

        result: list[tuple[int, str, str, bytes, int]] = await self.commit(Unit(take))
        return result

    async def next_webhook_in(self) -> float | None:
        """Seconds until the next pending delivery is due (≤ 0: now); None = none pending."""
        rows = await self.fetch(
            f"SELECT MIN(next_at) - {self.now} FROM webhooks WHERE state = 'pending'"
        )
        return None if rows[0][0] is None else float(rows[0][0])

    async def hold_webhook(self, webhook_id: int, claim: str, hold: float) -> bool:
        """Right before sending: whether ``claim`` still has the delivery (then it is held for
        ``hold`` more seconds); False = another process took it meanwhile, or it is settled."""

        async def write(tx: Tx) -> int:
            return await tx.execute(
                f"UPDATE webhooks SET next_at = {self.now} + ?"
                " WHERE id = ? AND claim = ? AND state = 'pending'",
                (float(hold), webhook_id, claim),
            )

        return bool(await self.commit(Unit(write)) == 1)

    async def update_webhook(
        self, webhook_id: int, claim: str, *, state: str, attempts: int, delay: float, error: str
    ) -> bool:
        """Record a delivery's outcome (due again in ``delay`` seconds, when pending), if
        ``claim`` still has it; whether it did."""

        async def write(tx: Tx) -> int:
            return await tx.execute(
                f"UPDATE webhooks SET state = ?, attempts = ?, next_at = {self.now} + ?,"
                " last_error = ? WHERE id = ? AND claim = ?",
                (state, attempts, float(delay), error, webhook_id, claim),
            )

        return bool(await self.commit(Unit(write)) == 1)
