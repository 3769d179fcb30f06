"""Per-token and per-user request limits: token buckets that refill continuously."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """At most ``per_minute`` requests per key per minute, with bursts up to that many; 0 = no limit."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, _Bucket] = {}
        self._clock = clock

    def acquire(self, key: str) -> float:
        """Take one request for ``key``: 0 if allowed, else the seconds until one is free."""
        if self.per_minute <= 0:
            return 0.0
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) > 100_000:  # forget idle keys rather than grow without bound
                self._buckets = {k: b for k, b in self._buckets.items() if now - b.updated < 60}
            bucket = self._buckets[key] = _Bucket(float(self.per_minute), now)
        rate = self.per_minute / 60.0
        bucket.tokens = min(float(self.per_minute), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate
