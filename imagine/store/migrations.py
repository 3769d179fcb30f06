"""Numbered schema migrations, for SQLite and PostgreSQL alike.

Every schema change is a new entry at the end of :data:`MIGRATIONS`, never an edit of an old
one. A database records the versions it has in ``schema_migrations``; one made before there
were migrations (the jobs table alone) is version 1. The service migrates an older database at
start (IMAGINE_AUTO_MIGRATE, default on) or refuses with a sentence; it never runs half-migrated.
"""

from __future__ import annotations

from dataclasses import dataclass

from imagine.store.base import SchemaError


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]


_V1_JOBS = """
CREATE TABLE IF NOT EXISTS jobs (
    {seq}
    id TEXT PRIMARY KEY,
    button_message_id TEXT NOT NULL UNIQUE,
    action TEXT NOT NULL,
    type TEXT NOT NULL,
    owner TEXT NOT NULL,
    content TEXT NOT NULL,
    prompt TEXT NOT NULL,
    ref TEXT NOT NULL,
    webhook TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL,
    parent_id TEXT,
    tile INTEGER,
    inputs TEXT NOT NULL,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    attempts INTEGER NOT NULL,
    result TEXT NOT NULL,
    error_code TEXT,
    error TEXT NOT NULL
)"""
_V1_INDEXES = (
    "CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status)",
    "CREATE INDEX IF NOT EXISTS jobs_parent ON jobs (parent_id, action)",
    "CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, status)",
    "CREATE INDEX IF NOT EXISTS webhooks_due ON webhooks (state, next_at)",
)
_V1_WEBHOOKS = """
CREATE TABLE IF NOT EXISTS webhooks (
    id {id},
    job_id TEXT NOT NULL,
    url TEXT NOT NULL,
    body {blob} NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at {real} NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT NOT NULL DEFAULT ''
)"""

_V2_COLUMNS = (
    "ALTER TABLE jobs ADD COLUMN progress {real} NOT NULL DEFAULT 0",
    "ALTER TABLE jobs ADD COLUMN preview TEXT",
    "ALTER TABLE jobs ADD COLUMN lease TEXT",
    "ALTER TABLE jobs ADD COLUMN lease_until {real}",
    "ALTER TABLE jobs ADD COLUMN worker TEXT NOT NULL DEFAULT ''",
    # which claim of a delivery may send it and record its outcome
    "ALTER TABLE webhooks ADD COLUMN claim TEXT",
    "CREATE TABLE turns (owner TEXT PRIMARY KEY, served_seq BIGINT NOT NULL,"
    " served_at {real} NOT NULL)",
    # what each worker renders with, so API instances (which load no model) know it too
    "CREATE TABLE workers (id TEXT PRIMARY KEY, host TEXT NOT NULL, engine TEXT NOT NULL,"
    " device TEXT NOT NULL, job_id TEXT, started_at {real} NOT NULL,"
    " heartbeat_at {real} NOT NULL, capabilities TEXT NOT NULL DEFAULT '')",
    "CREATE TABLE engines (name TEXT PRIMARY KEY, capabilities TEXT NOT NULL,"
    " published_at {real} NOT NULL)",
    # one upscale per tile across every API instance (a failed one may be pressed again)
    "CREATE UNIQUE INDEX jobs_one_upscale ON jobs (parent_id, action)"
    " WHERE action IN ('U1', 'U2', 'U3', 'U4') AND status != 'failed'",
)

_V3_CONTRACTS = (
    # the contract a job was asked through: the shape of its webhook body
    "ALTER TABLE jobs ADD COLUMN contract TEXT NOT NULL DEFAULT 'v2'",
    # midjourney-proxy's modal step: a press that waits for its prompt (and mask)
    "CREATE TABLE modals (id TEXT PRIMARY KEY, owner TEXT NOT NULL, parent_id TEXT NOT NULL,"
    " button TEXT NOT NULL, prompt TEXT NOT NULL, ref TEXT NOT NULL, webhook TEXT NOT NULL,"
    " speed TEXT NOT NULL, created_at TEXT NOT NULL)",
    # an API token's defaults (TheNextLeg's /v2/settings), by its scope, never the token itself
    "CREATE TABLE token_settings (scope TEXT PRIMARY KEY, settings TEXT NOT NULL)",
)


def _both(statements: tuple[str, ...], **pg: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    sqlite = {"seq": "", "id": "INTEGER PRIMARY KEY AUTOINCREMENT", "blob": "BLOB", "real": "REAL"}
    postgres = {"seq": "seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,", "id": "BIGSERIAL"
                " PRIMARY KEY", "blob": "BYTEA", "real": "DOUBLE PRECISION", **pg}  # fmt: skip
    return (
        tuple(s.format(**sqlite) for s in statements),
        tuple(s.format(**postgres) for s in statements),
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "jobs and the webhook outbox", *_both((_V1_JOBS, _V1_WEBHOOKS, *_V1_INDEXES))),
    Migration(
        2, "leases, progress, fair turns and workers; one upscale per tile", *_both(_V2_COLUMNS)
    ),
    Migration(3, "job contracts, modals and token settings", *_both(_V3_CONTRACTS)),
)
LATEST = MIGRATIONS[-1].version

BOOKKEEPING = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL, applied_at TEXT NOT NULL)"
)


def pending(current: int) -> list[Migration]:
    return [m for m in MIGRATIONS if m.version > current]


def to_apply(current: int, where: str, *, allowed: bool) -> list[Migration]:
    """The migrations a database at ``current`` needs; SchemaError (with what to do) when it is
    newer than this version, or older and ``allowed`` is off. A new, empty one always may."""
    if current > LATEST:
        raise SchemaError(
            f"The job database at {where} has schema version {current}, newer than this version "
            f"of the service knows ({LATEST}); run the newer version, or restore a backup made "
            "for this one."
        )
    todo = pending(current)
    if todo and current and not allowed:
        raise SchemaError(
            f"The job database at {where} has schema version {current} and this version needs "
            f"{LATEST}: run `python -m imagine migrate` (or set IMAGINE_AUTO_MIGRATE=1), then "
            "start again."
        )
    return todo
