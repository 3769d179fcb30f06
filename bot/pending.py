"""Deliveries still to post, kept in SQLite so a bot restart never loses a job.

A row is written as soon as the service accepts a job and removed once its result (or its
failure) has been posted. On start the bot resumes polling every row left behind.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Self

import aiosqlite


@dataclass(frozen=True)
class PendingJob:
    job_id: str
    prompt: str
    button: str
    """'' for /imagine, else the button that started the job (U2, V3, 🔄, ...)."""
    user_id: int
    guild_id: int | None
    channel_id: int
    application_id: int
    token: str
    """The interaction's token: edits and ephemeral notices go through it while it lives."""
    token_expires: float
    """Wall-clock time (epoch seconds) after which the token no longer works."""
    message_id: int | None = None
    """The message that shows the job's progress, once it exists."""
    message_via_token: bool = True
    """True: that message belongs to the interaction (edit via the token); False: a channel message."""
    reply_to: int | None = None
    """The message a freshly posted result replies to."""
    visibility: str = "public"
    """'public' (the channel), 'dm' (channel_id is the member's DM channel) or 'ephemeral' (only
    the member sees it, through the token; once it expires, their DMs)."""
    created: float = field(default_factory=time.time)

    def token_alive(self, margin: float = 5.0) -> bool:
        return time.time() < self.token_expires - margin

    def with_(self, **changes: Any) -> PendingJob:
        return replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> PendingJob:
        return cls(**json.loads(text))


async def open_sqlite(path: Path, table: str) -> aiosqlite.Connection:
    """The bot's own SQLite file (WAL), with ``table`` (a CREATE TABLE IF NOT EXISTS) in it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = await aiosqlite.connect(path)
    await db.execute("PRAGMA journal_mode=WAL")
    await db.execute(table)
    await db.commit()
    return db


class SqliteTable:
    """One table of the bot's SQLite file (``SCHEMA`` creates it), on its own connection."""

    SCHEMA: ClassVar[str]

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path) -> Self:
        return cls(await open_sqlite(path, cls.SCHEMA))

    async def close(self) -> None:
        await self._db.close()


class PendingStore(SqliteTable):
    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS pending"
        " (job_id TEXT PRIMARY KEY, record TEXT NOT NULL, created REAL)"
    )

    async def put(self, job: PendingJob) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO pending (job_id, record, created) VALUES (?, ?, ?)",
            (job.job_id, job.to_json(), job.created),
        )
        await self._db.commit()

    async def remove(self, job_id: str) -> None:
        await self._db.execute("DELETE FROM pending WHERE job_id = ?", (job_id,))
        await self._db.commit()

    async def get(self, job_id: str) -> PendingJob | None:
        async with self._db.execute(
            "SELECT record FROM pending WHERE job_id = ?", (job_id,)
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else PendingJob.from_json(row[0])

    async def all(self) -> list[PendingJob]:
        async with self._db.execute("SELECT record FROM pending ORDER BY created") as cursor:
            rows = await cursor.fetchall()
        return [PendingJob.from_json(row[0]) for row in rows]
