"""IMAGINE_MAX_CONCURRENT against what the engine can do: no job times out waiting its turn."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from PIL import Image

from imagine.engines.base import GenerateRequest, ProgressCallback
from imagine.engines.placeholder import PlaceholderEngine
from tests.service.conftest import ClientFactory, submit, wait_done

RENDER_SECONDS = 0.4


class OneAtATime(PlaceholderEngine):
    """Renders one job at a time (like the diffusers engine's single pipeline thread), or
    side by side when ``parallel`` is None; records how many ran at once."""

    def __init__(self, parallel: int | None) -> None:
        super().__init__()
        self._capabilities = dataclasses.replace(self._capabilities, parallel=parallel)
        self._turn = asyncio.Lock() if parallel == 1 else None
        self.running = 0
        self.most = 0

    async def generate(
        self, request: GenerateRequest, progress: ProgressCallback
    ) -> list[Image.Image]:
        if self._turn is not None:
            async with self._turn:
                return await self._render(request, progress)
        return await self._render(request, progress)

    async def _render(
        self, request: GenerateRequest, progress: ProgressCallback
    ) -> list[Image.Image]:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(RENDER_SECONDS)
            return await super().generate(request, progress)
        finally:
            self.running -= 1


@pytest.mark.parametrize(("parallel", "workers"), [(1, 1), (None, 3)])
async def test_workers_are_capped_by_what_the_engine_can_render(
    make_client: ClientFactory, parallel: int | None, workers: int
) -> None:
    engine = OneAtATime(parallel)
    # Three jobs of 0.4 s each: the last would wait 0.8 s for its turn, which must not count
    # toward its 1 s timeout.
    client = await make_client(engine=engine, max_concurrent=3, job_timeout=1.0)
    accepted = [await submit(client, f"a lantern {n}") for n in range(3)]
    results = [await wait_done(client, a["messageId"]) for a in accepted]

    assert [r["status"] for r in results] == ["done"] * 3, results
    assert engine.most == workers
    info = await (await client.get("/v2/info")).json()
    assert info["maxConcurrent"] == workers
