"""The buttons used on each result (by its buttonMessageId), kept in SQLite across restarts.

A used U is shown blue, as Midjourney marks it. The message a click arrives with is Discord's
snapshot from the moment of the click: two quick presses each see the other's U still grey, so a
view rebuilt from it un-blues the other. The record here is every press the service accepted on
that result; views are rebuilt from it under a lock per result, so the last edit written is one
that knows every press.
"""

from __future__ import annotations

import contextlib

import aiosqlite

from bot.pending import SqliteTable
from imagine.keyed import KeyedSemaphores


class PressedButtons(SqliteTable):
    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS pressed (button_message_id TEXT NOT NULL, "
        "button TEXT NOT NULL, PRIMARY KEY (button_message_id, button)) WITHOUT ROWID"
    )

    def __init__(self, db: aiosqlite.Connection) -> None:
        super().__init__(db)
        self._locks = KeyedSemaphores()
        """One lock per result being edited, kept only while it is."""

    async def add(self, button_message_id: str, button: str) -> frozenset[str]:
        """Record a press; returns every button pressed on that result so far."""
        await self._db.execute(
            "INSERT OR IGNORE INTO pressed (button_message_id, button) VALUES (?, ?)",
            (button_message_id, button),
        )
        await self._db.commit()
        async with self._db.execute(
            "SELECT button FROM pressed WHERE button_message_id = ?", (button_message_id,)
        ) as cursor:
            return frozenset(row[0] for row in await cursor.fetchall())

    def editing(self, button_message_id: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold while recording a press and editing the result's buttons."""
        return self._locks.hold(button_message_id)
