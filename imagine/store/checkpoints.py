"""WAL checkpoints off the commit path.

SQLite's own checkpoint runs inside the COMMIT that crosses 1000 pages of WAL: that commit
copies the pages into the database file and syncs both files, and every submission waiting in
its group commit waits with it (a COMMIT's p99 was 72 ms against a p50 of 3 ms under 64 clients
in bench/bench_api.py; 20 ms without it). So the writer's connection has
``wal_autocheckpoint=0`` and this one, on its own thread, runs a PASSIVE checkpoint (it waits
for no reader or writer) at most every CHECKPOINT_SECONDS while commits come in.

Under steady writes that alone never lets the WAL start over: commits land while it copies, so
it never finds the whole WAL copied (the file grew 39 MB in 32 s). Once the WAL holds
RESTART_FRAMES, the few pages left are copied on the writer's own thread, between two
transactions (6–12 ms here, mostly the two syncs), holding the write lock so that no other
process commits meanwhile (``_restart``), and the next write starts the WAL again.

The syncs are the ones SQLite makes with synchronous=NORMAL, done elsewhere: a commit is as
durable as before (in the WAL: it survives a kill -9; only a power cut may lose the last ones).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path

from imagine.store.sqlitethread import SQLiteThread

log = logging.getLogger(__name__)

CHECKPOINT_SECONDS = 0.5
"""At most this often. A group commit of 30 jobs writes about 19 pages of WAL, so at 1000
submissions a second SQLite's own would run every 1.6 s; this one copies ~300 pages a time."""
RESTART_FRAMES = 4000
"""WAL pages (16 MiB) after which the writer's thread copies the rest, so the WAL starts over:
about every 6 s at 1000 submissions a second."""
RESTART_WAIT_MS = 100
"""How long that copy waits for another process's transaction or reader to end."""


def _checkpoint(conn: sqlite3.Connection, mode: str = "PASSIVE") -> tuple[int, int, int]:
    busy, frames, copied = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    return int(busy), int(frames), int(copied)


def _restart(conn: sqlite3.Connection) -> tuple[int, int, int]:
    """On the writer's thread, between its transactions: copy the rest and see that the next
    write starts the WAL over. RESTART, not PASSIVE: it holds the write lock while it copies,
    so another process sharing the file cannot commit meanwhile. With PASSIVE that process's
    commits always landed during the copy, the WAL was never found all copied and never started
    over (it grew 1 GB in 30 s under two writing processes). Alone on the file it waits for
    nobody; beside another process, at most RESTART_WAIT_MS (then it reports busy and is tried
    again), not the writer's busy_timeout: the reads on this thread wait for it too."""
    (wait,) = conn.execute("PRAGMA busy_timeout").fetchone()
    conn.execute(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
    try:
        return _checkpoint(conn, "RESTART")
    finally:
        conn.execute(f"PRAGMA busy_timeout={int(wait)}")


class Checkpointer:
    def __init__(self, db: SQLiteThread, writer: SQLiteThread) -> None:
        self._db = db
        self._writer = writer
        self._task: asyncio.Task[None] | None = None
        self._last = time.monotonic()
        self._failing = False

    @classmethod
    async def open(cls, path: Path, writer: SQLiteThread) -> Checkpointer:
        return cls(await SQLiteThread.open(path), writer)

    def committed(self) -> None:
        """A write was committed: checkpoint now if one is due and none is under way."""
        now = time.monotonic()
        if now - self._last < CHECKPOINT_SECONDS or (self._task and not self._task.done()):
            return
        self._last = now
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            _, frames, _ = await self._db.run(_checkpoint)
            if frames >= RESTART_FRAMES:
                await self._writer.run(_restart)
        except sqlite3.Error as exc:  # a full disk, say: the WAL keeps the commits meanwhile
            if not self._failing:
                log.warning("a checkpoint of the job database failed (tried again): %s", exc)
            self._failing = True
        else:
            if self._failing:
                log.info("checkpoints of the job database work again")
            self._failing = False

    async def close(self) -> None:
        if self._task is not None:
            await self._task
        await self._db.close()
