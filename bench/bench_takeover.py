"""Takeover after a crash: two worker processes, one job; the one holding it gets SIGKILL and the
time until the other holds it is measured by polling PostgreSQL (the job's ``worker`` column)
every 5 ms. IMAGINE_LEASE_SECONDS=5; a worker renews every min(lease/3, 1) = 1 s and its reaper
looks every min(5, max(lease/4, 0.25)) = 1.25 s. Prints one JSON line.

Two cases, a few trials each:
- ``same_host``: both workers under this machine's host name. The reaper sees that the holder's
  pid is gone, so the job comes back within one reaper interval, without waiting for the lease.
- ``other_hosts``: each worker as if on a host of its own (its host name replaced, see
  _cluster.HOST_SHIM), as in a deployment of several machines: the lease has to run out. Expected:
  at most the lease left at the kill (4–5 s) plus one reaper interval, ≤ lease + 1.25 = 6.25 s.
The kill comes 1–2 s after the claim, so it falls anywhere between two renewals.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cluster import Fleet, base_env, poll, progress, run, started_cluster
from _quick import QUICK, pick
from _servers import free_port

BENCH = "takeover"
LEASE = 5.0
RENEW_EVERY = min(LEASE / 3, 1.0)
REAPER_EVERY = min(5.0, max(LEASE / 4, 0.25))
TRIALS = pick(3, 1)
POLL = 0.005


async def trial(
    fleet: Fleet,
    env: dict[str, str],
    db: asyncpg.Connection,
    base: str,
    hosts: tuple[str | None, str | None],
    wait: float,
    label: str,
) -> dict[str, Any]:
    workers = await asyncio.gather(*(
        fleet.spawn(f"{label}-{n}", ["worker", "--workers", "1"], env, ready="Imagine worker:",
                    host=host)
        for n, host in enumerate(hosts)
    ))  # fmt: skip
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{base}/v2/imagine", json={"msg": label}) as response,
        ):
            assert response.status == 200, await response.text()
            job_id = (await response.json())["messageId"]

        async def holder() -> str:
            row = await db.fetchrow("SELECT status, worker FROM jobs WHERE id = $1", job_id)
            return str(row["worker"]) if row and row["status"] == "running" else ""

        first = await poll(holder, timeout=15, every=POLL)
        await asyncio.sleep(wait)
        victim = next(w for w in workers if str(w.pid) == first.split(":")[1])
        lease_until = await db.fetchval("SELECT lease_until FROM jobs WHERE id = $1", job_id)
        killed = time.perf_counter()
        lease_left = float(lease_until) - time.time()
        await fleet.kill(victim)
        requeued: float | None = None

        async def taken() -> str:
            nonlocal requeued
            row = await db.fetchrow("SELECT status, worker FROM jobs WHERE id = $1", job_id)
            assert row is not None
            if row["status"] == "queued" and requeued is None:
                requeued = time.perf_counter() - killed
            if row["status"] == "running" and row["worker"] not in ("", first):
                return str(row["worker"])
            return ""

        second = await poll(taken, timeout=LEASE + REAPER_EVERY + 15, every=POLL)
        takeover = time.perf_counter() - killed
        attempts = await db.fetchval("SELECT attempts FROM jobs WHERE id = $1", job_id)
    finally:
        for worker in workers:  # the survivor too: its job is ended here, not rendered
            await fleet.kill(worker)
            await fleet.stop(worker)
    await db.execute(
        "UPDATE jobs SET status = 'failed', lease = NULL, worker = '' WHERE id = $1", job_id
    )
    result = {
        "takeover_s": round(takeover, 3),
        "requeue_seen_s": None if requeued is None else round(requeued, 3),
        "lease_left_at_kill_s": round(lease_left, 3),
        "attempts": attempts,
        "taken_by_survivor": any(
            str(w.pid) == second.split(":")[1] for w in workers if w is not victim
        ),
    }
    progress(BENCH, f"{label}: {result}")
    return result


def summary(trials: list[dict[str, Any]], bound: float) -> dict[str, Any]:
    times = sorted(t["takeover_s"] for t in trials)
    return {
        "trials": trials,
        "min_s": times[0],
        "median_s": times[len(times) // 2],
        "max_s": times[-1],
        "expected_max_s": round(bound, 3),
        "within_bound": times[-1] <= bound + 0.25,  # + the polling and a claim's round trips
    }


async def main() -> None:
    rng = random.Random(7)
    cluster = await started_cluster(BENCH)
    try:
        url = await asyncio.to_thread(cluster.create_database, "bench")
        with tempfile.TemporaryDirectory(prefix="imagine-bench-takeover-") as data:
            port = free_port()
            env = base_env(
                IMAGINE_DATABASE_URL=url,
                IMAGINE_DATA_DIR=data,
                IMAGINE_PORT=str(port),
                IMAGINE_LEASE_SECONDS=str(LEASE),
                IMAGINE_PLACEHOLDER_SECONDS="600",  # the job outlives the trial
            )
            base = f"http://127.0.0.1:{port}"
            async with Fleet(BENCH) as fleet:
                await fleet.spawn("api", ["serve", "--workers", "0"], env, ready="Imagine API on")
                db = await asyncpg.connect(url)
                try:
                    cases: dict[str, list[dict[str, Any]]] = {"same_host": [], "other_hosts": []}
                    for n in range(TRIALS):
                        for case, hosts in (
                            ("same_host", (None, None)),
                            ("other_hosts", (f"bench-a{n}", f"bench-b{n}")),
                        ):
                            wait = rng.uniform(RENEW_EVERY, 2 * RENEW_EVERY)
                            cases[case].append(
                                await trial(fleet, env, db, base, hosts, wait, f"{case}-{n}")
                            )
                finally:
                    await db.close()
    finally:
        await asyncio.to_thread(cluster.close)
    print(json.dumps({
        "bench": "takeover", "quick": QUICK, "lease_s": LEASE, "renew_every_s": RENEW_EVERY,
        "reaper_every_s": REAPER_EVERY,
        "same_host": summary(cases["same_host"], REAPER_EVERY),
        "other_hosts": summary(cases["other_hosts"], LEASE + REAPER_EVERY),
    }))  # fmt: skip


if __name__ == "__main__":
    run(BENCH, main())
