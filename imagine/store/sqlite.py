"""The single-machine store: one SQLite file in WAL mode.

WAL with synchronous=NORMAL survives a kill -9 of the process (only a power cut may lose the
last transactions), which is the failure this service must ride through. Several processes on
one machine may share the file: every write takes SQLite's write lock first.
"""

from __future__ import annotations

import asyncio
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
    INSERT_JOBS,
    AlreadyExists,
    LimitReached,
    StoreError,
    StoreUnavailable,
    Unit,
)
from imagine.store.jobstore import JobStore

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


class SQLiteStore(JobStore):
    seq = "rowid"
    claim_lock = ""  # the write lock is taken first (BEGIN IMMEDIATE): one claimer at a time

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._tx = _Tx(db)
        # Group commit: writes that arrive while a transaction is being committed wait and go
        # together in the next one. One connection, one writer: no coroutine ever sees another's
        # half-done transaction, and a burst of submissions costs one commit, not one each.
        self._pending: list[tuple[Unit, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

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
        if self._flusher is not None:
            await self._flusher
        await self._db.close()

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return await self._tx.fetch(sql, args)
        except sqlite3.OperationalError as exc:  # locked for longer than busy_timeout, I/O
            raise StoreUnavailable(f"The job database cannot be read right now ({exc}).") from exc

    async def commit(self, unit: Unit) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((unit, future))
        if self._flusher is None or self._flusher.done():
            # its own task: a caller cancelled mid-commit must not strand the others' writes
            self._flusher = asyncio.create_task(self._drain())
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._flush(batch)
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
        results: list[Any] = []
        try:
            # The write lock first: the counts a quota is checked against then hold for every
            # process on this database file until the commit.
            await self._db.execute("BEGIN IMMEDIATE")
            units = [unit for unit, _ in batch]
            quotas = [unit.quota for unit in units if unit.quota is not None]
            per_owner, waiting = await self.tallies(self._tx, quotas) if quotas else ({}, 0)
            refusals = self.admit(units, per_owner, waiting)
            # a burst of submissions inserts as one executemany: each call is a thread hop
            rows = [row for unit, no in zip(units, refusals, strict=True) if no is None
                    for row in unit.rows]  # fmt: skip
            if rows:
                await self._db.executemany(INSERT_JOBS, rows)
            for unit, refusal in zip(units, refusals, strict=True):
                if refusal is not None:
                    results.append(refusal)
                else:
                    results.append(await unit.work(self._tx) if unit.work else None)
            await self._db.commit()
        except Exception as exc:
            with contextlib.suppress(Exception):
                await self._db.rollback()
            if len(batch) > 1:
                raise
            future = batch[0][1]
            if isinstance(exc, sqlite3.IntegrityError):
                future.set_exception(AlreadyExists(str(exc)))
            else:
                log.error("a write to the job database failed: %s", exc)
                future.set_exception(StoreUnavailable.from_error(exc))
            return
        for (_, future), outcome in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(outcome, LimitReached):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)


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
