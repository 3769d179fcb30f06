"""The single-machine store: one SQLite file in WAL mode.

WAL with synchronous=NORMAL survives a kill -9 of the process (only a power cut may lose the
last transactions), which is the failure this service must ride through. Several processes on
one machine may share the file: every write takes SQLite's write lock first.

The connection lives on a thread of its own (:mod:`imagine.store.sqlitethread`): a group commit
runs there whole, in one hand-over, and reads go over in batches (those made while one batch is
there go together in the next). WAL checkpoints run on a connection of their own
(:mod:`imagine.store.checkpoints`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from imagine.jobs import utcnow
from imagine.store import migrations
from imagine.store.base import (
    AlreadyExists,
    StoreError,
    StoreUnavailable,
    Unit,
)
from imagine.store.batching import GroupCommitStore
from imagine.store.checkpoints import Checkpointer
from imagine.store.sqlitethread import SQLiteThread

log = logging.getLogger(__name__)

T = TypeVar("T")
BUSY_TIMEOUT_MS = 5000
"""How long a write waits for another process's write lock before it fails."""
_Read = tuple[str, Sequence[Any], asyncio.Future[list[tuple[Any, ...]]]]


class _NotBegun(Exception):
    """BEGIN itself failed: nothing of the group was tried."""

    def __init__(self, error: sqlite3.Error) -> None:
        super().__init__(str(error))
        self.error = error


class _Tx:
    """The open transaction, on the database's thread: its methods never suspend."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._conn.execute(sql, args).fetchall()]

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        return int(self._conn.execute(sql, args).rowcount)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)


def _to_the_end(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that awaits only :class:`_Tx` calls (which return at once) to its end."""
    try:
        work.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    work.close()
    raise RuntimeError("a unit's work awaited something other than its transaction")


def _read_all(conn: sqlite3.Connection, reads: list[_Read]) -> list[Any]:
    """Each read's rows, or the error it raised."""
    out: list[Any] = []
    for sql, args, _ in reads:
        try:
            out.append([tuple(row) for row in conn.execute(sql, args).fetchall()])
        except Exception as exc:  # this read's own failure: the others still answer
            out.append(exc)
    return out


class SQLiteStore(GroupCommitStore):
    seq = "rowid"
    claim_lock = ""  # the write lock is taken first (BEGIN IMMEDIATE): one claimer at a time

    def __init__(self, db: SQLiteThread, checkpoints: Checkpointer) -> None:
        super().__init__()
        self._db = db
        self._checkpoints = checkpoints
        self._reads: list[_Read] = []
        self._reading = False

    @classmethod
    async def open(cls, path: Path, *, migrate: bool = True) -> SQLiteStore:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = await SQLiteThread.open(path)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"Cannot open the job database at {path}: {exc}.") from exc
        try:
            await db.run(lambda conn: _prepare(conn, path, migrate))
            checkpoints = await Checkpointer.open(path, db)
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
        return cls(db, checkpoints)

    async def close(self) -> None:
        try:
            await self._settle()
            await self._checkpoints.close()
        finally:
            await self._db.close()  # whatever happened above: the last connection checkpoints

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        future: asyncio.Future[list[tuple[Any, ...]]] = asyncio.get_running_loop().create_future()
        self._reads.append((sql, args, future))
        if not self._reading:
            self._send_reads()
        try:
            return await future
        except sqlite3.OperationalError as exc:  # locked for longer than busy_timeout, I/O
            raise StoreUnavailable(f"The job database cannot be read right now ({exc}).") from exc

    def _send_reads(self) -> None:
        """Send the reads waiting, all in one call; those made while it runs wait for it and go
        together in the next (as writes do in a group commit)."""
        reads, self._reads = self._reads, []

        def deliver(results: list[Any] | None, error: BaseException | None) -> None:
            self._reading = False
            for (*_, future), result in zip(reads, results or [error] * len(reads), strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
            if self._reads:
                self._send_reads()

        try:
            self._db.post(lambda conn: _read_all(conn, reads), deliver)
        except sqlite3.Error as exc:  # closed (reads still queued when the store closed)
            deliver(None, StoreUnavailable(f"The job database cannot be read right now ({exc})."))
            return
        self._reading = True

    async def _apply(self, units: Sequence[Unit]) -> list[Any]:
        try:
            results = await self._db.run(lambda conn: self._transaction(conn, units))
        except _NotBegun as exc:
            # No unit's work ran: the database is unreachable (another process held its write
            # lock past busy_timeout, say), so each on its own would only wait as long again.
            raise self._error(exc.error) from exc.error
        self._checkpoints.committed()
        return results

    def _transaction(self, conn: sqlite3.Connection, units: Sequence[Unit]) -> list[Any]:
        """On the database's thread: the units in one transaction, committed; or rolled back
        and the error raised."""
        try:
            # The write lock first: the counts a quota is checked against then hold for every
            # process on this database file until the commit.
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _NotBegun(exc) from exc
        try:
            results = _to_the_end(self._run_units(_Tx(conn), units))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
        return results

    def _error(self, exc: Exception) -> StoreError:
        if isinstance(exc, StoreUnavailable):  # said and logged already
            return exc
        if isinstance(exc, sqlite3.IntegrityError):
            return AlreadyExists(str(exc))
        log.error("a write to the job database failed: %s", exc)
        return StoreUnavailable.from_error(exc)


def _prepare(conn: sqlite3.Connection, path: Path, migrate: bool) -> None:
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # the Checkpointer's connection does them
    _check_integrity(conn)
    _migrate(conn, path, allowed=migrate)


def _check_integrity(conn: sqlite3.Connection) -> None:
    check = conn.execute("PRAGMA quick_check").fetchall()
    if check != [("ok",)]:
        raise sqlite3.DatabaseError(f"integrity check failed: {check[:3]}")


def schema_version(conn: sqlite3.Connection) -> int:
    tables = {
        str(row[0])
        for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
    }
    if "schema_migrations" in tables:
        rows = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchall()
        return int(rows[0][0] or 0)
    return 1 if "jobs" in tables else 0  # a database from before migrations: version 1


def _migrate(conn: sqlite3.Connection, path: Path, *, allowed: bool) -> list[int]:
    """Bring the schema to the latest version (or refuse); the versions applied."""
    conn.execute("BEGIN IMMEDIATE")  # another process starting at once waits for this one
    try:
        current = schema_version(conn)
        todo = migrations.to_apply(current, str(path), allowed=allowed)
        conn.execute(migrations.BOOKKEEPING)
        if current == 1 and not conn.execute("SELECT 1 FROM schema_migrations").fetchall():
            conn.execute(
                "INSERT INTO schema_migrations VALUES (1, ?, ?)",
                (migrations.MIGRATIONS[0].name, utcnow().isoformat()),
            )
        for migration in todo:
            for statement in migration.sqlite:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                (migration.version, migration.name, utcnow().isoformat()),
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    if todo:
        log.info("job database %s: schema migrated to version %d", path, migrations.LATEST)
    return [m.version for m in todo]
