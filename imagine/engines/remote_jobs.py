"""How a remote job runs: batches of consecutive seeds, monotonic progress, awaiting a server while
checking for cancellation.

Cancellation reaches an engine two ways: the progress callback raises :class:`EngineCancelled`
(job timeout, shutdown), or the task running ``generate`` is cancelled. Either way the server is
told to stop (interrupt, delete the request) before the exception goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from PIL import Image

from imagine.engines.base import EngineCancelled, ProgressCallback

log = logging.getLogger(__name__)

T = TypeVar("T")


def seed_runs(seeds: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Split seeds into runs of consecutive values.

    A1111 and AI Horde number a batch's seeds seed, seed+1, ...; one run is one batched request
    whose tile k equals a single render with its seed. The service normally asks for one run.
    """
    runs: list[list[int]] = []
    for seed in seeds:
        if runs and seed == runs[-1][-1] + 1:
            runs[-1].append(seed)
        else:
            runs.append([seed])
    return [tuple(run) for run in runs]


class ProgressReporter:
    """Forwards progress for one part of a job (part ``index`` of ``parts``), never going backwards.

    Remote servers report progress of whatever they run (a shared WebUI may be busy with someone
    else's job), so a fraction that drops is held rather than shown.
    """

    def __init__(self, callback: ProgressCallback, parts: int = 1) -> None:
        self.callback = callback
        self.parts = max(1, parts)
        self.index = 0
        self.shown = 0.0

    def part(self, index: int) -> None:
        self.index = index

    def __call__(self, fraction: float, preview: Image.Image | None = None) -> None:
        within = min(max(fraction, 0.0), 0.99)
        overall = (self.index + within) / self.parts
        self.shown = max(self.shown, min(overall, 0.99))
        self.callback(self.shown, preview)

    def preview(self, image: Image.Image) -> None:
        self.callback(self.shown, image)

    def tick(self) -> None:
        """Repeat the last fraction: lets the callback raise EngineCancelled while we wait."""
        self.callback(self.shown, None)

    async def async_tick(self) -> None:
        self.tick()

    def done(self) -> None:
        self.shown = 1.0
        self.callback(1.0, None)


async def await_with_ticks(
    work: Awaitable[T],
    *,
    interval: float,
    tick: Callable[[], Awaitable[None]],
    stop: Callable[[], Awaitable[None]],
) -> T:
    """Await ``work``, calling ``tick`` every ``interval`` seconds until it finishes.

    ``tick`` reports progress and may raise EngineCancelled. On that, or on cancellation of this
    task, ``work`` is cancelled, ``stop`` tells the server to stop, and the exception goes on.
    """
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=interval)
            if done:
                return task.result()
            await tick()
    except (EngineCancelled, asyncio.CancelledError):
        task.cancel()
        await stop_quietly(stop)
        raise
    finally:
        if not task.done():
            task.cancel()


async def stop_quietly(stop: Callable[[], Awaitable[None]]) -> None:
    """Run a best-effort stop request; it must not hide the cancellation that caused it."""
    try:
        await asyncio.shield(stop())
    except asyncio.CancelledError:
        raise
    except Exception:
        log.warning("could not tell the server to stop", exc_info=True)
