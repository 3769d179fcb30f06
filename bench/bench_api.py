"""API throughput and latency: POST /v2/imagine and GET /v2/message at 1, 16 and 64 clients, against a
bare aiohttp handler measured in the same run. Prints one JSON line.

Usage: ``python bench/bench_api.py [SECONDS_PER_LEVEL] [ROUNDS]``. With ``BENCH_BASELINE=<folder>`` (a
checkout of an older version: ``git worktree add /tmp/old HEAD~1``) that version's server is measured in
the same run as well, and ``vs_baseline`` gives ours over it. Every server is started first and they take
turns at each level, round after round (the order rotating), so a neighbour's load on a shared machine
falls on all of them alike; each figure is the median over the rounds.

Goals (issues 8 and 16): GET ≥ 0.5× and POST (a durable write) ≥ 0.25× the bare handler's throughput;
p99 ≤ 25 ms at 64 clients. The engine is the placeholder with a very long simulated render, so the queue
fills and no rendering competes with the API for the CPU.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _quick import QUICK, pick
from _servers import free_port, load, start, stop

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else pick(3.0, 1.0)
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 1
LEVELS = (1, 16, 64)
BASELINE = os.environ.get("BENCH_BASELINE", "")


def _calls(
    base: str, message_id: str
) -> dict[str, Callable[[aiohttp.ClientSession], Awaitable[None]]]:
    async def post(session: aiohttp.ClientSession) -> None:
        async with session.post(
            f"{base}/v2/imagine", json={"msg": "a lighthouse at dusk --ar 16:9"}
        ) as r:
            assert r.status == 200, await r.text()
            await r.read()

    async def get(session: aiohttp.ClientSession) -> None:
        async with session.get(f"{base}/v2/message/{message_id}") as r:
            assert r.status == 200
            await r.read()

    return {"post": post, "get": get}


def _serve(root: str) -> list[str]:
    """``python -m imagine serve`` of the tree at ``root`` (this one's bench folder is the cwd)."""
    if not root:
        return ["-m", "imagine", "serve"]
    code = f"import sys; sys.path.insert(0, {root!r}); from imagine.__main__ import main; sys.exit(main(['serve']))"
    return ["-c", code]


async def _first_job(base: str) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}/v2/imagine", json={"msg": "polled"}) as r,
    ):
        return str((await r.json())["messageId"])


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {field: round(statistics.median(run[field] for run in runs), 2) for field in runs[0]}


async def main() -> None:
    servers: dict[str, tuple[asyncio.subprocess.Process, str]] = {}
    folders: list[tempfile.TemporaryDirectory[str]] = []
    try:
        port = free_port()
        servers["bare"] = (
            await start(["bench/_bare_server.py", str(port)], port),
            f"http://127.0.0.1:{port}",
        )
        for name, root in (("ours", ""), ("baseline", BASELINE)):
            if name == "baseline" and not root:
                continue
            port, data = free_port(), tempfile.TemporaryDirectory()
            folders.append(data)
            env = {"IMAGINE_DATA_DIR": data.name, "IMAGINE_PORT": str(port), "IMAGINE_PLACEHOLDER_SECONDS": "3600",
                   "IMAGINE_QUEUE_LIMIT": "1000000", "IMAGINE_API_TOKENS": ""}  # fmt: skip
            servers[name] = (await start(_serve(root), port, env), f"http://127.0.0.1:{port}")
        calls = {
            name: _calls(base, "x" if name == "bare" else await _first_job(base))
            for name, (_, base) in servers.items()
        }
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {name: {} for name in servers}
        names = list(servers)
        for round_ in range(ROUNDS):
            for clients in LEVELS:
                for kind in ("post", "get"):
                    turn = round_ % len(names)
                    for name in names[turn:] + names[:turn]:
                        result = await load(calls[name][kind], clients, SECONDS)
                        runs[name].setdefault(f"{kind}_{clients}", []).append(result)
    finally:
        for process, _ in servers.values():
            await stop(process)
        for data in folders:
            data.cleanup()
    figures = {
        name: {key: _median(r) for key, r in by_key.items()} for name, by_key in runs.items()
    }
    ours, bare = figures["ours"], figures["bare"]
    ratios = {key: round(ours[key]["rps"] / bare[key]["rps"], 3) for key in ours}
    p99_ratios = {key: round(ours[key]["p99_ms"] / bare[key]["p99_ms"], 2) for key in ours}
    line: dict[str, Any] = {
        "bench": "api", "quick": QUICK, "seconds_per_level": SECONDS, "rounds": ROUNDS, "ours": ours, "bare": bare,
        "ratio": ratios, "p99_over_bare": p99_ratios,
    }  # fmt: skip
    if "baseline" in figures:
        old = figures["baseline"]
        line["baseline"] = old
        line["vs_baseline"] = {
            key: {field: round(ours[key][field] / old[key][field], 2) for field in ours[key]}
            for key in ours
        }
    line["goals"] = {
        "get_ratio_min_ge_0.5": min(v for k, v in ratios.items() if k.startswith("get")) >= 0.5,
        "post_ratio_min_ge_0.25": min(v for k, v in ratios.items() if k.startswith("post")) >= 0.25,
        "p99_64_le_25ms": max(ours["post_64"]["p99_ms"], ours["get_64"]["p99_ms"]) <= 25,
    }
    print(json.dumps(line))


if __name__ == "__main__":
    asyncio.run(main())
