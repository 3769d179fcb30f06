"""Which job each posted result is (by its Discord message id), kept in SQLite across restarts,
so ✉️ and "Apps → Show job" can tell a member the job behind any result the bot posted; and
where the bot has read the editor's inbox up to."""

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

    async def has_job(self, job_id: str) -> bool:
        async with self._db.execute(
            "SELECT 1 FROM posted WHERE job_id = ? LIMIT 1", (job_id,)
        ) as cursor:
            return await cursor.fetchone() is not None


class Cursors(SqliteTable):
    """Named positions the bot has read up to (the editor's inbox), so a restart takes up where
    the last run stopped and nothing sent while the bot was down is left unposted."""

    SCHEMA = "CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, value INTEGER NOT NULL)"

    async def get(self, name: str) -> int | None:
        async with self._db.execute("SELECT value FROM cursors WHERE name = ?", (name,)) as cur:
            row = await cur.fetchone()
        return None if row is None else int(row[0])

    async def put(self, name: str, value: int) -> None:
        await self._db.execute(
            "INSERT INTO cursors (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )
        await self._db.commit()
