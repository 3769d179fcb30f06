"""Webhook delivery from a durable outbox: retried with backoff, signed, guarded against SSRF."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time

import aiohttp

from imagine.fetch import guarded_session
from imagine.netguard import BlockedAddress, UrlPolicy
from imagine.store import JobStore

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Imagine-Signature"


def sign(secret: str, body: bytes) -> str:
    """HMAC-SHA256 of the raw body, hex, prefixed like GitHub's: ``sha256=<hex>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSender:
    def __init__(
        self,
        store: JobStore,
        *,
        secret: str,
        delays: tuple[float, ...],
        policy: UrlPolicy,
        timeout: float = 10.0,
    ) -> None:
        self._store = store
        self._secret = secret
        self._delays = delays
        self._policy = policy
        self._timeout = timeout
        self._wake = asyncio.Event()

    async def enqueue(self, job_id: str, url: str, body: bytes) -> None:
        await self._store.add_webhook(job_id, url, body, time.time())
        self._wake.set()

    async def run(self) -> None:
        """Deliver due webhooks until cancelled."""
        async with guarded_session(self._policy.allow_private, self._timeout) as session:
            while True:
                for webhook in await self._store.due_webhooks(time.time()):
                    await self._deliver(session, *webhook)
                next_at = await self._store.next_webhook_at()
                wait = 3600.0 if next_at is None else max(0.0, next_at - time.time())
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=min(wait, 3600.0))

    async def _deliver(
        self,
        session: aiohttp.ClientSession,
        webhook_id: int,
        job_id: str,
        url: str,
        body: bytes,
        attempts: int,
    ) -> None:
        headers = {"Content-Type": "application/json"}
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
        attempts += 1
        retry = True
        try:
            target = self._policy.check(url)
            async with session.post(
                target, data=body, headers=headers, allow_redirects=False
            ) as response:
                if 200 <= response.status < 300:
                    await self._store.update_webhook(
                        webhook_id,
                        state="delivered",
                        attempts=attempts,
                        next_at=time.time(),
                        error="",
                    )
                    log.info("webhook for job %s delivered to %s", job_id, url)
                    return
                error = f"HTTP {response.status}"
                retry = response.status >= 500 or response.status in (408, 429)
        except BlockedAddress as exc:
            error, retry = f"refused: {exc}", False
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = str(exc) or type(exc).__name__
        if retry and attempts <= len(self._delays):
            delay = self._delays[attempts - 1]
            log.warning(
                "webhook for job %s to %s failed (%s); try %d again in %.0f s",
                job_id,
                url,
                error,
                attempts + 1,
                delay,
            )
            await self._store.update_webhook(
                webhook_id,
                state="pending",
                attempts=attempts,
                next_at=time.time() + delay,
                error=error,
            )
        else:
            log.error(
                "webhook for job %s to %s given up after %d tries: %s", job_id, url, attempts, error
            )
            await self._store.update_webhook(
                webhook_id, state="failed", attempts=attempts, next_at=time.time(), error=error
            )
