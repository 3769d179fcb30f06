"""Which job each posted result is (by its Discord message id), kept in SQLite across restarts,
so ✉️ and "Apps → Show job" can tell a member the job behind any result the bot posted."""

from __future__ import annotations

from bot.pending import SqliteTable


class PostedResults(SqliteTable):
    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS posted (message_id INTEGER PRIMARY KEY, "
        "job_id TEXT NOT NULL, user_id INTEGER NOT NULL)"
    )

    async def add(self, message_id: int, job_id: str, user_id: int) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO posted (message_id, job_id, user_id) VALUES (?, ?, ?)",
            (message_id, job_id, user_id),
        )
        await self._db.commit()

    async def job_of(self, message_id: int) -> str | None:
        async with self._db.execute(
            "SELECT job_id FROM posted WHERE message_id = ?", (message_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else str(row[0])
