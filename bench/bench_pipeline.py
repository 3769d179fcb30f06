"""Pipeline overhead per grid job: end-to-end time (POST → GET says 100) minus the engine's own time, with
1024² tiles and an engine of fixed cost. What is left is the service: queue pickup, grid compose, encodes,
SQLite writes, the completed message. Prints one JSON line. Goal (issue 8): ≤ 150 ms p50 on this machine.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from _quick import QUICK, pick
from PIL import Image

from imagine.engines.base import Capabilities, GenerateRequest, ProgressCallback
from imagine.engines.placeholder import PlaceholderEngine, render
from imagine.server import start_service
from imagine.settings import Settings

JOBS = int(sys.argv[1]) if len(sys.argv) > 1 else pick(20, 8)
ENGINE_SECONDS = 0.3


class FixedCostEngine(PlaceholderEngine):
    """Returns pre-rendered 1024² tiles after a fixed wait, and records the time spent inside."""

    def __init__(self) -> None:
        super().__init__()
        self._capabilities = Capabilities(name="fixed", native_size=1024, multiple=64)
        self.tiles = [render("bench", seed, 1024, 1024) for seed in range(4)]
        self.spent: list[float] = []

    async def generate(
        self, request: GenerateRequest, progress: ProgressCallback
    ) -> list[Image.Image]:
        began = time.perf_counter()
        await asyncio.sleep(ENGINE_SECONDS)
        progress(1.0, None)
        tiles = [tile.copy() for tile in self.tiles]
        self.spent.append(time.perf_counter() - began)
        return tiles


async def main() -> None:
    engine = FixedCostEngine()
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(data_dir=Path(data), port=0, environ={})
        service = await start_service(settings, engine)
        overheads, totals = [], []
        try:
            async with aiohttp.ClientSession() as session:
                for n in range(JOBS + 2):
                    began = time.perf_counter()
                    async with session.post(
                        f"{service.url}/v2/imagine", json={"msg": f"job {n}"}
                    ) as r:
                        message_id = (await r.json())["messageId"]
                    while True:
                        async with session.get(f"{service.url}/v2/message/{message_id}") as r:
                            body = await r.json()
                        if body["progress"] == 100:
                            break
                        await asyncio.sleep(0.002)
                    total = time.perf_counter() - began
                    assert body["response"]["status"] == "done", body
                    if n >= 2:  # the first two warm up
                        totals.append(total)
                        overheads.append(total - engine.spent[-1])
        finally:
            await service.stop()
    overheads.sort()
    print(json.dumps({
        "bench": "pipeline", "quick": QUICK, "jobs": JOBS, "tile": "1024x1024", "engine_s": ENGINE_SECONDS,
        "overhead_p50_ms": round(statistics.median(overheads) * 1000, 1),
        "overhead_max_ms": round(overheads[-1] * 1000, 1),
        "end_to_end_p50_ms": round(statistics.median(totals) * 1000, 1),
        "goal_p50_le_150ms": statistics.median(overheads) <= 0.150,
    }))  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
