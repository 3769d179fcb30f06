"""The single-machine store: one SQLite file in WAL mode.

WAL with synchronous=NORMAL survives a kill -9 of the process (only a power cut may lose the
last transactions), which is the failure this service must ride through. Several processes on
one machine may share the file: every write takes SQLite's write lock first.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from imagine.jobs import utcnow
from imagine.store import migrations
from imagine.store.base import (
    AlreadyExists,
    StoreError,
    StoreUnavailable,
    Unit,
)
from imagine.store.batching import GroupCommitStore

log = logging.getLogger(__name__)


class _Tx:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await self._db.execute_fetchall(sql, args)]

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        return int((await self._db.execute(sql, args)).rowcount)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._db.executemany(sql, rows)


class SQLiteStore(GroupCommitStore):
    seq = "rowid"
    claim_lock = ""  # the write lock is taken first (BEGIN IMMEDIATE): one claimer at a time

    def __init__(self, db: aiosqlite.Connection) -> None:
        super().__init__()
        self._db = db
        self._tx = _Tx(db)

    @classmethod
    async def open(cls, path: Path, *, migrate: bool = True) -> SQLiteStore:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(path)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"Cannot open the job database at {path}: {exc}.") from exc
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA busy_timeout=5000")
            await _check_integrity(db)
            await _migrate(db, path, allowed=migrate)
        except sqlite3.Error as exc:
            await db.close()
            raise StoreError(
                f"The job database at {path} cannot be used ({exc}). If the file is damaged, "
                "move it aside (keep it for recovery) and start again; if the folder is read-only "
                "or full, fix that first."
            ) from exc
        except BaseException:
            await db.close()
            raise
        return cls(db)

    async def close(self) -> None:
        await self._settle()
        await self._db.close()

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return await self._tx.fetch(sql, args)
        except sqlite3.OperationalError as exc:  # locked for longer than busy_timeout, I/O
            raise StoreUnavailable(f"The job database cannot be read right now ({exc}).") from exc

    async def _apply(self, units: Sequence[Unit]) -> list[Any]:
        try:
            # The write lock first: the counts a quota is checked against then hold for every
            # process on this database file until the commit.
            await self._db.execute("BEGIN IMMEDIATE")
            results = await self._run_units(self._tx, units)
            await self._db.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                await self._db.rollback()
            raise
        return results

    def _error(self, exc: Exception) -> StoreError:
        if isinstance(exc, sqlite3.IntegrityError):
            return AlreadyExists(str(exc))
        log.error("a write to the job database failed: %s", exc)
        return StoreUnavailable.from_error(exc)


async def _check_integrity(db: aiosqlite.Connection) -> None:
    check = await db.execute_fetchall("PRAGMA quick_check")
    if list(check) != [("ok",)]:
        raise sqlite3.DatabaseError(f"integrity check failed: {list(check)[:3]}")


async def schema_version(db: aiosqlite.Connection) -> int:
    tables = {
        str(row[0])
        for row in await db.execute_fetchall("SELECT name FROM sqlite_master WHERE type='table'")
    }
    if "schema_migrations" in tables:
        rows = list(await db.execute_fetchall("SELECT MAX(version) FROM schema_migrations"))
        return int(rows[0][0] or 0)
    return 1 if "jobs" in tables else 0  # a database from before migrations: version 1


async def _migrate(db: aiosqlite.Connection, path: Path, *, allowed: bool) -> list[int]:
    """Bring the schema to the latest version (or refuse); the versions applied."""
    await db.execute("BEGIN IMMEDIATE")  # another process starting at once waits for this one
    try:
        current = await schema_version(db)
        todo = migrations.to_apply(current, str(path), allowed=allowed)
        await db.execute(migrations.BOOKKEEPING)
        if current == 1 and not list(await db.execute_fetchall("SELECT 1 FROM schema_migrations")):
            await db.execute(
                "INSERT INTO schema_migrations VALUES (1, ?, ?)",
                (migrations.MIGRATIONS[0].name, utcnow().isoformat()),
            )
        for migration in todo:
            for statement in migration.sqlite:
                await db.execute(statement)
            await db.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                (migration.version, migration.name, utcnow().isoformat()),
            )
        await db.commit()
    except BaseException:
        with contextlib.suppress(Exception):
            await db.rollback()
        raise
    if todo:
        log.info("job database %s: schema migrated to version %d", path, migrations.LATEST)
    return [m.version for m in todo]
