"""Schema migrations: a database made by the previous version, with jobs in it, is upgraded in
place and its jobs go on; a database the service may not (or cannot) migrate is refused with a
sentence, never half-used."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from imagine.settings import Settings
from imagine.store import SchemaError, SQLiteStore, open_store
from imagine.store.migrations import LATEST, MIGRATIONS
from tests.service.conftest import ClientFactory, press, wait_done

# The schema of the version before migrations existed (commit 3c31ad5's imagine/store.py), as
# the databases of every installation made until now have it.
V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
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
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
CREATE INDEX IF NOT EXISTS jobs_parent ON jobs (parent_id, action);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, status);
CREATE TABLE IF NOT EXISTS webhooks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    url TEXT NOT NULL,
    body BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS webhooks_due ON webhooks (state, next_at);
"""


def _row(job_id: str, status: str, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": job_id, "button_message_id": f"b-{job_id}", "action": "imagine", "type": "imagine",
        "owner": "local:u1", "content": f"old {job_id}", "prompt": json.dumps({"text": f"old {job_id}"}),
        "ref": "", "webhook": "", "status": status, "priority": 0, "parent_id": None, "tile": None,
        "inputs": "[]", "created_at": "2026-11-30T10:00:00+00:00", "started_at": None,
        "finished_at": None, "attempts": 0, "result": json.dumps({"seeds": [1, 2, 3, 4]}),
        "error_code": None, "error": "",
    }  # fmt: skip
    row.update(extra)
    return row


def _old_database(path: Path) -> None:
    """A database exactly as the previous version left it: a queued job, one its crash left
    running, and a finished one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.executescript(V1_SCHEMA)
        for row in (
            _row("queuedjob", "queued"),
            _row("runningjob", "running", started_at="2026-11-30T10:00:01+00:00", attempts=1),
        ):
            db.execute(
                f"INSERT INTO jobs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                list(row.values()),
            )
    db.close()


def _prompt_dict(text: str) -> str:
    from imagine.prompt import parse

    return json.dumps(parse(text)[0].to_dict())


async def test_an_old_sqlite_database_with_jobs_is_upgraded_and_its_jobs_finish(
    make_client: ClientFactory, settings: Settings
) -> None:
    path = settings.data_dir / "jobs.sqlite3"
    _old_database(path)
    with sqlite3.connect(path) as db:  # real prompts, so the jobs can run
        db.execute("UPDATE jobs SET prompt = ?", (_prompt_dict("an old lighthouse"),))
    db.close()
    client = await make_client()
    queued = await wait_done(client, "queuedjob")
    resumed = await wait_done(client, "runningjob")  # its process died: it runs again
    assert (queued["status"], resumed["status"]) == ("done", "done")
    assert queued["content"] == "old queuedjob"
    # and what the new version offers works on the old jobs
    upscale = await wait_done(
        client, (await press(client, queued["buttonMessageId"], "U1"))["messageId"]
    )
    assert upscale["status"] == "done"
    with sqlite3.connect(path) as db:
        versions = [v for (v,) in db.execute("SELECT version FROM schema_migrations ORDER BY 1")]
        attempts = db.execute("SELECT attempts FROM jobs WHERE id = 'runningjob'").fetchone()[0]
    db.close()
    assert versions == [m.version for m in MIGRATIONS]
    assert attempts == 2


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "imagine", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_with_auto_migrate_off_an_old_database_is_refused_until_migrate_runs(
    tmp_path: Path,
) -> None:
    _old_database(tmp_path / "jobs.sqlite3")
    env = {"IMAGINE_DATA_DIR": str(tmp_path), "IMAGINE_AUTO_MIGRATE": "0", "IMAGINE_PORT": "0"}
    refused = _cli("serve", env=env)
    assert refused.returncode == 2
    assert "schema version 1" in refused.stderr
    assert "python -m imagine migrate" in refused.stderr
    assert "Traceback" not in refused.stderr
    with sqlite3.connect(tmp_path / "jobs.sqlite3") as db:  # untouched: nothing half-done
        tables = {t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    db.close()
    assert "schema_migrations" not in tables
    migrated = _cli("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert "up to date" in migrated.stdout
    assert _cli("migrate", env=env).returncode == 0  # again: nothing to do, no error


async def test_a_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = await SQLiteStore.open(path)
    await store.close()
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO schema_migrations VALUES (?, 'from the future', 'x')", (LATEST + 1,)
        )
    db.close()
    with pytest.raises(SchemaError, match=f"schema version {LATEST + 1}, newer"):
        await SQLiteStore.open(path)


async def test_postgres_at_the_first_version_with_jobs_is_upgraded(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        for statement in MIGRATIONS[0].postgres:
            await conn.execute(statement)
        row = _row("pgjob", "queued", prompt=_prompt_dict("a postgres lighthouse"))
        await conn.execute(
            f"INSERT INTO jobs ({', '.join(row)}) VALUES"
            f" ({', '.join(f'${n}' for n in range(1, len(row) + 1))})",
            *row.values(),
        )
    finally:
        await conn.close()
    settings = Settings(database_url=pg_url, environ={})
    with pytest.raises(SchemaError, match="python -m imagine migrate"):
        await open_store(settings, migrate=False)
    # two instances starting at once: one migrates, the other waits for it and finds it done
    first, second = await asyncio.gather(open_store(settings), open_store(settings))
    try:
        job = await first.get("pgjob")
        assert job is not None
        assert job.status.value == "queued"
        claimed = await second.claim("w", 30)
        assert claimed is not None
        assert claimed[0].id == "pgjob"
    finally:
        await first.close()
        await second.close()
