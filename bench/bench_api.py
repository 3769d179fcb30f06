"""API throughput and latency: POST /v2/imagine and GET /v2/message at 1, 16 and 64 clients, against a
bare aiohttp handler measured in the same run. Prints one JSON line.

Goals (issue 8): GET ≥ 0.5× and POST (a durable write) ≥ 0.25× the bare handler's throughput; p99 ≤ 25 ms
at 64 clients. The engine is the placeholder with a very long simulated render, so the queue fills and no
rendering competes with the API for the CPU.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from typing import Any

import aiohttp

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from _servers import free_port, load, start, stop

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
LEVELS = (1, 16, 64)


async def measure(base: str, message_id: str) -> dict[str, Any]:
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

    results: dict[str, Any] = {}
    for clients in LEVELS:
        results[f"post_{clients}"] = await load(post, clients, SECONDS)
        results[f"get_{clients}"] = await load(get, clients, SECONDS)
    return results


async def main() -> None:
    bare_port, ours_port = free_port(), free_port()
    bare = await start(["bench/_bare_server.py", str(bare_port)], bare_port)
    try:
        baseline = await measure(f"http://127.0.0.1:{bare_port}", "x")
    finally:
        await stop(bare)
    with tempfile.TemporaryDirectory() as data:
        env = {"IMAGINE_DATA_DIR": data, "IMAGINE_PORT": str(ours_port), "IMAGINE_PLACEHOLDER_SECONDS": "3600",
               "IMAGINE_QUEUE_LIMIT": "1000000", "IMAGINE_API_TOKENS": ""}  # fmt: skip
        ours_process = await start(["-m", "imagine", "serve"], ours_port, env)
        try:
            base = f"http://127.0.0.1:{ours_port}"
            async with (
                aiohttp.ClientSession() as session,
                session.post(f"{base}/v2/imagine", json={"msg": "polled"}) as r,
            ):
                message_id = (await r.json())["messageId"]
            ours = await measure(base, message_id)
        finally:
            await stop(ours_process)
    ratios = {key: round(ours[key]["rps"] / baseline[key]["rps"], 3) for key in ours}
    print(json.dumps({
        "bench": "api", "seconds_per_level": SECONDS, "ours": ours, "bare": baseline, "ratio": ratios,
        "goals": {
            "get_ratio_min_ge_0.5": min(v for k, v in ratios.items() if k.startswith("get")) >= 0.5,
            "post_ratio_min_ge_0.25": min(v for k, v in ratios.items() if k.startswith("post")) >= 0.25,
            "p99_64_le_25ms": max(ours["post_64"]["p99_ms"], ours["get_64"]["p99_ms"]) <= 25,
        },
    }))  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
