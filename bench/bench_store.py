"""The job database under API load: ``POST /v2/imagine`` and ``GET /v2/message/{id}`` on PostgreSQL
(a throwaway cluster on 127.0.0.1, tests/infra/postgres.py) vs SQLite (the data folder), same run,
16 and 64 closed-loop clients. One real API process each (``serve --workers 0``: nothing renders),
with limits raised and the jobs spread over 1,000 users so nothing is refused. GETs read the jobs
the POSTs made. Prints one JSON line: requests/s, p50 and p99 per backend and level, and the
PostgreSQL / SQLite throughput ratios.

The load generator (Python, this process), the API and PostgreSQL share this machine's cores.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cluster import Fleet, base_env, progress, run, started_cluster
from _quick import QUICK, pick
from _servers import free_port, load

BENCH = "store"
SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else pick(3.0, 1.0)
LEVELS = (16, 64)
USERS = 1000


async def measure(base: str) -> dict[str, Any]:
    users = itertools.cycle(range(USERS))
    made: list[str] = []

    async def post(session: aiohttp.ClientSession) -> None:
        body = {"msg": "a lighthouse at dusk --ar 16:9", "ref": json.dumps({"user": f"u{next(users)}"})}  # fmt: skip
        async with session.post(f"{base}/v2/imagine", json=body) as r:
            assert r.status == 200, await r.text()
            made.append((await r.json())["messageId"])

    async def get(session: aiohttp.ClientSession) -> None:
        async with session.get(f"{base}/v2/message/{next(ids)}") as r:
            assert r.status == 200, await r.text()
            await r.read()

    results: dict[str, Any] = {}
    for clients in LEVELS:
        results[f"post_{clients}"] = await load(post, clients, SECONDS)
        ids = itertools.cycle(list(made))
        results[f"get_{clients}"] = await load(get, clients, SECONDS)
    results["jobs"] = len(made)
    return results


async def main() -> None:
    cluster = await started_cluster(BENCH)
    results: dict[str, dict[str, Any]] = {}
    try:
        url = await asyncio.to_thread(cluster.create_database, "bench")
        with tempfile.TemporaryDirectory(prefix="imagine-bench-store-") as data:
            async with Fleet(BENCH) as fleet:
                for backend, database in (("postgres", url), ("sqlite", "")):
                    port = free_port()
                    env = base_env(
                        IMAGINE_DATABASE_URL=database,
                        IMAGINE_DATA_DIR=os.path.join(data, backend),
                        IMAGINE_PORT=str(port),
                        IMAGINE_PLACEHOLDER_SECONDS="3600",
                    )
                    api = await fleet.spawn(
                        f"api-{backend}", ["serve", "--workers", "0"], env, ready="Imagine API on"
                    )
                    progress(BENCH, f"{backend}: {api.ready_line}")
                    try:
                        results[backend] = await measure(f"http://127.0.0.1:{port}")
                    finally:
                        await fleet.stop(api)
                    progress(BENCH, f"{backend}: {results[backend]}")
    finally:
        await asyncio.to_thread(cluster.close)
    pg, lite = results["postgres"], results["sqlite"]
    keys = [k for k in pg if k != "jobs"]
    print(json.dumps({
        "bench": "store", "quick": QUICK, "cores": os.cpu_count(), "seconds_per_level": SECONDS, "users": USERS,
        "postgres": pg, "sqlite": lite,
        "ratio_rps_postgres_to_sqlite": {k: round(pg[k]["rps"] / lite[k]["rps"], 3) for k in keys},
    }))  # fmt: skip


if __name__ == "__main__":
    run(BENCH, main())
