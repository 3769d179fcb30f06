"""Durable job storage behind one interface: SQLite on one machine, PostgreSQL when distributed.

``IMAGINE_DATABASE_URL`` chooses: empty means ``jobs.sqlite3`` in the data folder, a
``postgresql://`` URL means a PostgreSQL database every API instance and worker shares.
"""

from __future__ import annotations

from imagine.settings import Settings
from imagine.store.base import (
    AlreadyExists,
    Lease,
    LimitReached,
    Quota,
    SchemaError,
    StoreError,
    StoreUnavailable,
    WorkerBeat,
)
from imagine.store.claims import LIVE_MARKS, new_mark, worker_name
from imagine.store.jobstore import Fenced, JobStore
from imagine.store.modals import Modal
from imagine.store.sqlite import SQLiteStore

__all__ = [
    "LIVE_MARKS",
    "AlreadyExists",
    "Fenced",
    "JobStore",
    "Lease",
    "LimitReached",
    "Modal",
    "Quota",
    "SQLiteStore",
    "SchemaError",
    "StoreError",
    "StoreUnavailable",
    "WorkerBeat",
    "new_mark",
    "open_store",
    "worker_name",
]


def describe(settings: Settings) -> str:
    if settings.database_url:
        from imagine.store.postgres import redact

        return redact(settings.database_url)
    return str(settings.data_dir / "jobs.sqlite3")


async def open_store(settings: Settings, *, migrate: bool | None = None) -> JobStore:
    """The store ``settings`` name, its schema brought up to date (or SchemaError)."""
    allowed = settings.auto_migrate if migrate is None else migrate
    url = settings.database_url
    if not url:
        return await SQLiteStore.open(settings.data_dir / "jobs.sqlite3", migrate=allowed)
    if not url.startswith(("postgresql://", "postgres://")):
        raise StoreError(
            "IMAGINE_DATABASE_URL must be empty (SQLite in the data folder) or a PostgreSQL URL "
            f"like postgresql://user:password@host:5432/imagine, got {url[:40]!r}."
        )
    from imagine.store.postgres import PostgresStore

    return await PostgresStore.open(url, migrate=allowed)
