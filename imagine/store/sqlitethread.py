"""One SQLite connection on a thread of its own, driven from the event loop.

Like aiosqlite, with one difference that matters under load: a call runs a whole function on
the thread, not one statement. A group commit (BEGIN IMMEDIATE, the quota check, the inserts,
each unit's work, COMMIT) then costs one hand-over between the threads instead of one per
statement, and so does a batch of reads. Under 64 clients each of a commit's four statements
waited 3–11 ms (p50) for its turn, behind the reads of the burst and for the GIL, so a commit
took 25 ms (p50) in bench/bench_api.py; in one turn it takes 4 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from queue import SimpleQueue
from typing import Any, TypeVar

T = TypeVar("T")
Then = Callable[[Any, BaseException | None], None]
"""What runs on the event loop once a call has run: its result, or the error it raised."""
_Call = tuple[asyncio.AbstractEventLoop, Callable[[], Any], Then]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # its caller was cancelled; the call itself has run
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class SQLiteThread:
    """A sqlite3 connection that only its own thread touches; calls run in the order made."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._calls: SimpleQueue[_Call | None] = SimpleQueue()
        self._conn: sqlite3.Connection | None = None
        # a daemon: a process that exits with a call under way is a kill -9 to SQLite (safe)
        self._thread = threading.Thread(target=self._serve, name="sqlite", daemon=True)

    @classmethod
    async def open(cls, path: Path) -> SQLiteThread:
        """Connect in autocommit mode: transactions are the explicit BEGIN ... COMMIT of the
        functions run here."""
        db = cls(path)
        db._thread.start()
        try:
            db._conn = await db._submit(
                lambda: sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            )
        except BaseException:
            db._calls.put(None)
            raise
        return db

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            loop, function, then = call
            result: Any = None
            error: BaseException | None = None
            try:
                result = function()
            except BaseException as exc:  # handed to the caller, whatever it is
                error = exc
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(then, result, error)

    def _submit(self, function: Callable[[], T]) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put((loop, function, partial(_settle, future)))
        return future

    def _bound(self, function: Callable[[sqlite3.Connection], T]) -> Callable[[], T]:
        conn = self._conn
        if conn is None:
            raise sqlite3.ProgrammingError("the job database connection is closed")
        return lambda: function(conn)

    def post(self, function: Callable[[sqlite3.Connection], Any], then: Then) -> None:
        """Run ``function(connection)`` on the thread, then ``then`` on this event loop: one
        turn of the loop sooner than awaiting a future would take."""
        self._calls.put((asyncio.get_running_loop(), self._bound(function), then))

    def call(self, function: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Run ``function(connection)`` on the thread; its result (or exception) as a future."""
        return self._submit(self._bound(function))

    async def run(self, function: Callable[[sqlite3.Connection], T]) -> T:
        return await self.call(function)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._submit(conn.close)
        self._calls.put(None)
