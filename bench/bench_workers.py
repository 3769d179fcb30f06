"""Distributed throughput: 1, 2 and 4 worker processes (``python -m imagine worker --workers 1``)
against one PostgreSQL and one API process (``serve --workers 0``), placeholder engine at a fixed
0.5 s a job. Each round submits 40 jobs from 8 users through the API with its workers already up,
and times the first claim to the last finish (the jobs' started_at and finished_at, read from
PostgreSQL). Prints one JSON line: jobs/s per worker count and the speedups over 1 worker, same run.

Goal (issue: distributed mode): ≥ 3.6× at 4 workers. Ideal is 4×: the placeholder sleeps, but it
also draws four 512² tiles and the job's PNGs and grid JPEG are encoded, about 0.1 s of CPU a job
(``worker_cpu_s_per_job``, from /proc), so on a small machine the workers, the API, PostgreSQL and
this process share the cores and each job takes longer as workers are added (``mean_job_s``).
``machine_cpu_busy`` is the share of all cores busy during the round, other users' work included.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cluster import (
    Fleet,
    base_env,
    cpu_seconds,
    machine_busy,
    poll,
    progress,
    run,
    started_cluster,
)
from _quick import QUICK, pick
from _servers import free_port

BENCH = "workers"
COUNTS = pick((1, 2, 4), (1, 4))
USERS, PER_USER = pick((8, 5), (4, 3))
JOBS = USERS * PER_USER
SECONDS_PER_JOB = 0.5


async def submit(session: aiohttp.ClientSession, base: str, tag: str) -> list[str]:
    """USERS clients at once, each posting PER_USER jobs one after another; the job ids."""

    async def user(number: int) -> list[str]:
        ids = []
        for n in range(PER_USER):
            body = {
                "msg": f"{tag} user {number} job {n}",
                "ref": json.dumps({"user": f"u{number}"}),
            }
            async with session.post(f"{base}/v2/imagine", json=body) as response:
                assert response.status == 200, await response.text()
                ids.append((await response.json())["messageId"])
        return ids

    return [i for ids in await asyncio.gather(*(user(u) for u in range(USERS))) for i in ids]


async def round_of(
    fleet: Fleet, count: int, env: dict[str, str], db: asyncpg.Connection, base: str
) -> dict[str, Any]:
    progress(BENCH, f"{count} worker process(es): starting")
    workers = await asyncio.gather(*(
        fleet.spawn(f"worker-{count}-{n}", ["worker", "--workers", "1"], env, ready="Imagine worker:")
        for n in range(count)
    ))  # fmt: skip
    try:
        async with aiohttp.ClientSession() as session:
            cpu_before = sum(cpu_seconds(w.pid) for w in workers)
            busy_before, total_before = machine_busy()
            began = time.perf_counter()
            ids = await submit(session, base, f"round {count}")
            submitted = time.perf_counter() - began

            holders: dict[str, str] = {}  # a finished job keeps no worker: seen while running

            async def finished() -> bool:
                rows = await db.fetch(
                    "SELECT id, status, worker FROM jobs WHERE id = ANY($1)"
                    " AND status IN ('queued', 'running')",
                    ids,
                )
                holders.update((r["id"], r["worker"]) for r in rows if r["status"] == "running")
                return not rows

            await poll(finished, timeout=JOBS * SECONDS_PER_JOB * 4 + 30, every=0.05)
            wall = time.perf_counter() - began
            busy_after, total_after = machine_busy()
            worker_cpu = sum(cpu_seconds(w.pid) for w in workers) - cpu_before
    finally:
        codes = await asyncio.gather(*(fleet.stop(w) for w in workers))
    rows = await db.fetch(
        "SELECT status, started_at, finished_at, worker, attempts FROM jobs WHERE id = ANY($1)", ids
    )
    timed = [r for r in rows if r["started_at"] and r["finished_at"]]
    started = [datetime.fromisoformat(r["started_at"]) for r in timed]
    ended = [datetime.fromisoformat(r["finished_at"]) for r in timed]
    span = (max(ended) - min(started)).total_seconds()
    busy = sum((e - s).total_seconds() for s, e in zip(started, ended, strict=True))
    per_process = Counter(worker.split(":")[1] for worker in holders.values())  # host:pid:…
    result = {
        "workers": count,
        "jobs_per_s": round(JOBS / span, 3),
        "claim_to_done_s": round(span, 3),
        "submit_to_done_s": round(wall, 3),
        "submit_s": round(submitted, 3),
        "mean_job_s": round(busy / len(timed), 3),
        "jobs_per_process": sorted(per_process.values(), reverse=True),
        "jobs_seen_running": len(holders),
        "worker_cpu_s_per_job": round(worker_cpu / JOBS, 3),
        "machine_cpu_busy": round(
            (busy_after - busy_before) / max(total_after - total_before, 1e-9), 3
        ),
        "not_done": sum(r["status"] != "done" for r in rows),
        "restarted": sum(r["attempts"] > 1 for r in rows),
        "exit_codes": codes,
    }
    progress(BENCH, f"{count} worker process(es): {result}")
    return result


async def main() -> None:
    cluster = await started_cluster(BENCH)
    try:
        url = await asyncio.to_thread(cluster.create_database, "bench")
        with tempfile.TemporaryDirectory(prefix="imagine-bench-workers-") as data:
            port = free_port()
            env = base_env(
                IMAGINE_DATABASE_URL=url,
                IMAGINE_DATA_DIR=data,
                IMAGINE_PORT=str(port),
                IMAGINE_PLACEHOLDER_SECONDS=str(SECONDS_PER_JOB),
            )
            async with Fleet(BENCH) as fleet:
                await fleet.spawn("api", ["serve", "--workers", "0"], env, ready="Imagine API on")
                db = await asyncpg.connect(url)
                try:
                    rounds = [
                        await round_of(fleet, n, env, db, f"http://127.0.0.1:{port}")
                        for n in COUNTS
                    ]
                finally:
                    await db.close()
    finally:
        await asyncio.to_thread(cluster.close)
    one = rounds[0]["jobs_per_s"]
    speedup = {f"x{r['workers']}": round(r["jobs_per_s"] / one, 3) for r in rounds}
    print(json.dumps({
        "bench": "workers", "quick": QUICK, "cores": os.cpu_count(), "jobs": JOBS, "users": USERS, "seconds_per_job": SECONDS_PER_JOB,
        "rounds": rounds, "speedup": speedup,
        "ideal_jobs_per_s": {f"x{n}": round(n / SECONDS_PER_JOB, 3) for n in COUNTS},
        "goals": {"speedup_4_ge_3.6": speedup["x4"] >= 3.6},
    }))  # fmt: skip


if __name__ == "__main__":
    run(BENCH, main())
