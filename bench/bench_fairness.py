"""Fairness: 100 users × 10 jobs submitted at once through the API. Prints one JSON line with the start order's
verdict. Goal (issue 8): every user's first job starts before any user's third."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import tempfile
import time
from pathlib import Path

import aiohttp
from _quick import QUICK, pick
from PIL import Image

from imagine.engines.base import Capabilities, GenerateRequest, ProgressCallback
from imagine.engines.placeholder import PlaceholderEngine
from imagine.server import start_service
from imagine.settings import Settings

USERS, JOBS = pick((100, 10), (20, 5))


class InstantEngine(PlaceholderEngine):
    def __init__(self) -> None:
        super().__init__()
        self._capabilities = Capabilities(name="instant", native_size=64, multiple=8)

    async def generate(
        self, request: GenerateRequest, progress: ProgressCallback
    ) -> list[Image.Image]:
        await asyncio.sleep(0.001)
        return [
            Image.new("RGB", (request.width, request.height), (seed % 256, 0, 0))
            for seed in request.seeds
        ]


async def main() -> None:
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(data_dir=Path(data), port=0, queue_limit=USERS * JOBS, environ={})
        service = await start_service(settings, InstantEngine())
        began = time.perf_counter()
        try:
            async with aiohttp.ClientSession() as session:

                async def submit(user: int) -> None:
                    for n in range(JOBS):
                        body = {
                            "msg": f"user {user} job {n}",
                            "ref": json.dumps({"user": str(user)}),
                        }
                        async with session.post(f"{service.url}/v2/imagine", json=body) as response:
                            assert response.status == 200, await response.text()

                await asyncio.gather(*(submit(user) for user in range(USERS)))
                while True:
                    async with session.get(f"{service.url}/v2/info") as response:
                        info = await response.json()
                    if info["queued"] == 0 and info["running"] == 0:
                        break
                    await asyncio.sleep(0.05)
        finally:
            await service.stop()
        elapsed = time.perf_counter() - began
        with sqlite3.connect(Path(data) / "jobs.sqlite3") as db:
            rows = db.execute("SELECT content, started_at FROM jobs ORDER BY started_at").fetchall()
    rank = {content: index for index, (content, _) in enumerate(rows)}
    last_first = max(rank[f"user {u} job 0"] for u in range(USERS))
    first_third = min(rank[f"user {u} job 2"] for u in range(USERS))
    print(json.dumps({
        "bench": "fairness", "quick": QUICK, "users": USERS, "jobs_each": JOBS, "seconds": round(elapsed, 1),
        "last_first_job_started_at": last_first, "first_third_job_started_at": first_third,
        "goal_every_first_before_any_third": last_first < first_third,
    }))  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
