"""The distributed store: PostgreSQL through asyncpg, shared by every API instance and worker.

Submissions that carry a quota take one advisory lock for their transaction, so the counts they
are checked against hold across instances until the commit (as SQLite's write lock does on one
machine). Claims lock the job they take with ``FOR UPDATE SKIP LOCKED``; new jobs are announced
with NOTIFY so idle workers wake at once. A database that is down or restarting makes every call
raise :class:`StoreUnavailable` (the API answers 503); the pool reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from imagine.jobs import utcnow
from imagine.store import migrations
from imagine.store.base import (
    AlreadyExists,
    StoreError,
    StoreUnavailable,
    Tx,
    Unit,
)
from imagine.store.batching import GroupCommitStore

log = logging.getLogger(__name__)

CHANNEL = "imagine_jobs"
QUOTA_LOCK = 72_616_001
"""Advisory lock key held by transactions that check a quota and insert jobs."""
MIGRATION_LOCK = 72_616_002
CONNECT_TIMEOUT = 5.0
COMMAND_TIMEOUT = 15.0
_PLACEHOLDER = re.compile(r"\?")


def _dollars(sql: str) -> str:
    """``?`` placeholders (the shared SQL's) as PostgreSQL's ``$1, $2, …``."""
    count = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(count)}", sql)


def redact(url: str) -> str:
    """The URL without its password, for logs and sentences."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


_UNREACHABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
)


def _unavailable(exc: BaseException) -> StoreUnavailable:
    return StoreUnavailable(
        f"The job database (PostgreSQL) cannot be reached right now ({type(exc).__name__}: "
        f"{str(exc) or 'no answer'})."
    )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """A connection back in the pool needs no reset: the store holds only transaction-scoped
    locks and listens on a connection of its own (asyncpg still rolls back an open transaction).
    Its default reset is one more round trip on every call."""


class _Tx:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await self._conn.fetch(_dollars(sql), *args)]

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        status = await self._conn.execute(_dollars(sql), *args)
        last = str(status).rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._conn.executemany(_dollars(sql), rows)


class PostgresStore(GroupCommitStore):
    seq = "seq"
    claim_lock = " FOR UPDATE OF j SKIP LOCKED"
    now = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        super().__init__()
        self._pool = pool
        self._url = url

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True, pool_size: int = 10) -> PostgresStore:
        where = redact(url)
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=pool_size,
                reset=_keep_session,
                timeout=CONNECT_TIMEOUT,
                command_timeout=COMMAND_TIMEOUT,
            )
        except (
            asyncpg.InvalidPasswordError,
            asyncpg.InvalidAuthorizationSpecificationError,
        ) as exc:
            raise StoreError(f"PostgreSQL at {where} refused the login: {exc}.") from exc
        except asyncpg.InvalidCatalogNameError as exc:
            raise StoreError(
                f"PostgreSQL at {where} has no such database ({exc}); create it first "
                "(createdb), then start again."
            ) from exc
        except (*_UNREACHABLE, ValueError) as exc:
            raise StoreError(
                f"Cannot reach the job database at {where} ({type(exc).__name__}: {exc}); check "
                "IMAGINE_DATABASE_URL and that PostgreSQL is running."
            ) from exc
        try:
            async with pool.acquire() as conn:
                await _migrate(conn, where, allowed=migrate)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, url)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._settle()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await self._pool.close()
                return
        self._pool.terminate()

    async def _on_connection(self, use: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
        """``use`` a pooled connection; one that failed mid-call is dropped, never reused (after
        a lost server it can be stuck half-way through an operation)."""
        try:
            conn = await self._pool.acquire(timeout=CONNECT_TIMEOUT)
        except _UNREACHABLE as exc:
            raise _unavailable(exc) from exc
        try:
            return await use(conn)
        except (*_UNREACHABLE, asyncpg.InternalClientError) as exc:
            # after a lost server asyncpg may have released it itself: terminate() then refuses
            with contextlib.suppress(asyncpg.InterfaceError):
                conn.terminate()
            raise _unavailable(exc) from exc
        finally:
            with contextlib.suppress(Exception):
                await self._pool.release(conn, timeout=CONNECT_TIMEOUT)

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self._on_connection(lambda conn: _Tx(conn).fetch(sql, args))  # type: ignore[no-any-return]

    async def _apply(self, units: Sequence[Unit]) -> list[Any]:
        async def run(conn: asyncpg.Connection) -> list[Any]:
            async with conn.transaction():
                if any(unit.quota is not None for unit in units):
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", QUOTA_LOCK)
                return await self._run_units(_Tx(conn), units)

        result: list[Any] = await self._on_connection(run)
        return result

    def _error(self, exc: Exception) -> StoreError:
        if isinstance(exc, StoreError):
            return exc
        if isinstance(exc, asyncpg.UniqueViolationError):
            return AlreadyExists(str(exc))
        log.error("a write to the job database failed: %s", exc)
        return StoreUnavailable.from_error(exc)

    async def notify(self, tx: Tx) -> None:
        await tx.execute(f"NOTIFY {CHANNEL}")

    async def watch(self, wake: Callable[[], None]) -> None:
        """LISTEN on a connection of its own; after a lost connection, reconnect and wake the
        workers once (a NOTIFY may have been missed meanwhile)."""
        delay = 0.5
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self._url, timeout=CONNECT_TIMEOUT)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, lambda *_args: wake())
                delay = 0.5
                wake()
                while not lost.is_set():  # a silent network drop is found by a ping
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(10):
                            await lost.wait()
                    if not lost.is_set():
                        async with asyncio.timeout(5):
                            await conn.execute("SELECT 1")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("job database: listening for new jobs failed (%s); retrying", exc)
                wake()  # the workers look themselves meanwhile
            finally:
                if conn is not None:
                    conn.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def schema_version(conn: asyncpg.Connection) -> int:
    if await conn.fetchval("SELECT to_regclass('schema_migrations')") is not None:
        return int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))
    return 1 if await conn.fetchval("SELECT to_regclass('jobs')") is not None else 0


async def _migrate(conn: asyncpg.Connection, where: str, *, allowed: bool) -> list[int]:
    async with conn.transaction():
        # instances starting together: one migrates, the others wait and find it done
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        current = await schema_version(conn)
        todo = migrations.to_apply(current, where, allowed=allowed)
        await conn.execute(migrations.BOOKKEEPING)
        for migration in todo:
            for statement in migration.postgres:
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_migrations VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                utcnow().isoformat(),
            )
    if todo:
        log.info("job database %s: schema migrated to version %d", where, migrations.LATEST)
    return [m.version for m in todo]
