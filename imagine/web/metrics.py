"""``/metrics`` in Prometheus' text format, for the operator's token only.

Request latency is measured here as requests pass. The job counters and render times are read
from the job database at each scrape (the jobs that were accepted or ended since the last one),
so they count the jobs of every worker, in this process or another; the queue and the webhook
outbox are read as they stand. Each instance keeps its own registry (tests run many apps).
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from imagine.edges.common import Handler
from imagine.jobs import utcnow
from imagine.store import JobStore
from imagine.store.base import dt, ts

RENDER_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
OVERLAP = timedelta(seconds=120)
"""How far back each scrape looks again for ended jobs: a job saved late (its finish time is
earlier than one already counted) is still counted, once."""


class _Outbox:
    """The queue and the webhook outbox as the last scrape read them."""

    def __init__(self) -> None:
        self.queue: dict[str, int] = {}
        self.webhooks: list[tuple[str, int, int]] = []

    def collect(self) -> Iterator[Metric]:
        queue = GaugeMetricFamily(
            "imagine_queue_jobs", "Jobs waiting or rendering", labels=["state"]
        )
        for state, count in sorted(self.queue.items()):
            queue.add_metric([state], count)
        yield queue
        outbox = GaugeMetricFamily(
            "imagine_webhook_outbox", "Webhook deliveries by state", labels=["state"]
        )
        done = CounterMetricFamily(
            "imagine_webhook_deliveries", "Webhook deliveries that ended", labels=["outcome"]
        )
        retries = CounterMetricFamily("imagine_webhook_retries", "Webhook tries after the first")
        total_retries = 0
        for state, count, extra in self.webhooks:
            outbox.add_metric([state], count)
            if state != "pending":
                done.add_metric([state], count)
            total_retries += extra
        retries.add_metric([], total_retries)
        yield outbox
        yield done
        yield retries


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.accepted = Counter(
            "imagine_jobs_accepted", "Jobs accepted", ["action"], registry=self.registry
        )
        self.done = Counter("imagine_jobs_done", "Jobs done", ["action"], registry=self.registry)
        self.failed = Counter(
            "imagine_jobs_failed", "Jobs failed", ["action", "code"], registry=self.registry
        )
        self.render = Histogram(
            "imagine_render_seconds", "Seconds from a job's start to its end, by engine",
            ["engine"], buckets=RENDER_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "imagine_http_request_seconds", "API latency by route", ["method", "route"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.requests = Counter(
            "imagine_http_requests", "API requests by route and status",
            ["method", "route", "status"], registry=self.registry,
        )  # fmt: skip
        self._outbox = _Outbox()
        self.registry.register(self._outbox)
        self._seq: int | None = None
        self._ended_since: str | None = None
        self._counted: dict[str, str] = {}
        """Ended jobs counted in the overlap window, by id: their finish time."""

    async def start(self, store: JobStore) -> None:
        """Count from now on: jobs accepted or ended before this process started are not new."""
        rows = await store.fetch(f"SELECT COALESCE(MAX({store.seq}), 0) FROM jobs")
        self._seq = int(rows[0][0])
        self._ended_since = ts(utcnow())

    async def scrape(self, store: JobStore, engine: str) -> bytes:
        if self._seq is None:
            await self.start(store)
        await self._read_accepted(store)
        await self._read_ended(store, engine)
        rows = await store.fetch(
            "SELECT status, COUNT(*) FROM jobs WHERE status IN ('queued', 'running') GROUP BY status"
        )
        counts = {str(status): int(count) for status, count in rows}
        self._outbox.queue = {
            "waiting": counts.get("queued", 0),
            "running": counts.get("running", 0),
        }
        rows = await store.fetch(
            "SELECT state, COUNT(*), SUM(CASE WHEN attempts > 1 THEN attempts - 1 ELSE 0 END)"
            " FROM webhooks GROUP BY state"
        )
        self._outbox.webhooks = [(str(s), int(c), int(r or 0)) for s, c, r in rows]
        return generate_latest(self.registry)

    async def _read_accepted(self, store: JobStore) -> None:
        rows = await store.fetch(
            f"SELECT {store.seq}, action FROM jobs WHERE {store.seq} > ? ORDER BY {store.seq}",
            (self._seq,),
        )
        for seq, action in rows:
            self.accepted.labels(action).inc()
            self._seq = int(seq)

    async def _read_ended(self, store: JobStore, engine: str) -> None:
        since = dt(self._ended_since)
        assert since is not None
        rows = await store.fetch(
            "SELECT id, action, status, error_code, started_at, finished_at, result FROM jobs"
            " WHERE status IN ('done', 'failed') AND finished_at > ?",
            (ts(since - OVERLAP),),
        )
        latest = since
        for job_id, action, status, code, started, finished, result in rows:
            if job_id in self._counted:
                continue
            self._counted[job_id] = finished
            ended = dt(finished)
            if ended is not None and ended > latest:
                latest = ended
            if status == "failed":
                self.failed.labels(action, code or "UNKNOWN").inc()
                continue
            self.done.labels(action).inc()
            began = dt(started)
            if began is not None and ended is not None and action not in ("U1", "U2", "U3", "U4"):
                self.render.labels(_engine(result, engine)).observe((ended - began).total_seconds())
        self._ended_since = ts(latest)
        horizon = ts(latest - OVERLAP) or ""
        self._counted = {i: f for i, f in self._counted.items() if f > horizon}

    async def measure(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else "unmatched"
            self.latency.labels(request.method, route).observe(time.perf_counter() - start)
            self.requests.labels(request.method, route, str(status)).inc()


def _engine(result: str, default: str) -> str:
    try:
        data: Any = json.loads(result)
        return str(data.get("settings", {}).get("engine") or default)
    except (ValueError, AttributeError):
        return default


def allowed(request: web.Request, admin_token: str) -> bool:
    """Whether the request carries ``Authorization: Bearer <IMAGINE_ADMIN_TOKEN>``."""
    scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return bool(admin_token) and hmac.compare_digest(given.encode(), admin_token.encode())


__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "allowed"]
