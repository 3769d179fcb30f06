"""The one domain error the service raises: an HTTP status, a result code and a sentence.

Only the contract edges (:mod:`imagine.app`) turn it into a response.
"""

from __future__ import annotations

import errno
import sqlite3
from typing import Any

from imagine.codes import ResultCode


class ServiceError(Exception):
    def __init__(self, status: int, code: ResultCode | None, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def unavailable(message: str, retry_after: int = 30) -> ServiceError:
    """503 with Retry-After: the server cannot take work now (a full disk, a database outage)."""
    return ServiceError(503, None, f"{message} Try again later.", retryAfter=retry_after)


DISK_FULL = "The server's disk is full"


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC or a quota from the OS, or SQLite's SQLITE_FULL ("database or disk is full")."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(exc, sqlite3.Error) and (
        getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "is full" in str(exc)
    )
