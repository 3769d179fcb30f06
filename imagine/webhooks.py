"""Webhook delivery from a durable outbox: retried with backoff, signed, guarded against SSRF.

A job's webhook row is written in the same transaction that finishes the job
(:meth:`JobStore.save`), so a crash never keeps one without the other. Deliveries run side by
side, each at most once at a time, and at most :data:`PER_ORIGIN` at once to one receiving
origin (scheme, host, port): a receiver that hangs holds only its own slots, never another's.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import logging
import secrets

import aiohttp
from yarl import URL

from imagine.fetch import guarded_session
from imagine.keyed import KeyedSemaphores
from imagine.netguard import BlockedAddress, UrlPolicy
from imagine.store import JobStore

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Imagine-Signature"
PER_ORIGIN = 4
UNSAVED_RETRY = 5.0
CONNECT_TIMEOUT = 3.0
"""A receiver that takes longer than this to accept a connection is down: try it again later."""
IDEMPOTENCY_HEADER = "Idempotency-Key"
"""Carries the delivery's id: the same on every try of one delivery, so a receiver can drop a
repeat (a delivery can be sent twice when its sender dies before it saves the outcome)."""
HOLD = 120.0
"""Seconds a claimed delivery is this process's alone (then another may retry it)."""
LOOK_EVERY = 30.0
"""Seconds between looks at the outbox when nothing woke this process (others add to it too)."""


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
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._origins = KeyedSemaphores(PER_ORIGIN)
        self._unsaved: dict[int, tuple[str, str, int, float, str]] = {}
        """Outcomes (claim, state, attempts, delay, error) that could not be saved (a full disk): not
        sent again until saved, or the row, still pending, would go out again at once."""

    def wake(self) -> None:
        """A delivery was added: look at the outbox now."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver due webhooks until cancelled."""
        # no pool-wide cap: the per-origin slots bound it, and a shared cap (aiohttp's default
        # is 100) would let hanging receivers on many origins hold up everyone's deliveries
        async with guarded_session(
            self._policy.allow_private, self._timeout, CONNECT_TIMEOUT, limit=0
        ) as session:
            try:
                while True:
                    self._wake.clear()
                    try:
                        await self._start_due(session)
                        due_in = await self._store.next_webhook_in()
                    except Exception:  # the outbox must outlive any one bad row or hiccup
                        log.exception("webhook outbox: could not read due deliveries")
                        due_in = 5.0
                    wait = LOOK_EVERY if due_in is None else max(0.05, due_in)
                    if self._unsaved:  # the database cannot be written: no hurry
                        wait = UNSAVED_RETRY
                    # asyncio.timeout, not wait_for: Python 3.11's wait_for drops a cancellation
                    # that arrives as the event is set, and shutdown would then wait for ever.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(min(wait, LOOK_EVERY)):
                            await self._wake.wait()
            finally:
                for task in self._in_flight.values():
                    task.cancel()
                await asyncio.gather(*self._in_flight.values(), return_exceptions=True)

    async def _start_due(self, session: aiohttp.ClientSession) -> None:
        for webhook_id, outcome in list(self._unsaved.items()):
            await self._save(webhook_id, *outcome)
        claim = secrets.token_hex(8)
        # what this process is sending (or could not record) keeps its own claim
        due = await self._store.claim_webhooks(
            100, HOLD + self._timeout, claim, keep={*self._in_flight, *self._unsaved}
        )
        for webhook_id, job_id, url, body, attempts in due:
            if webhook_id in self._in_flight or webhook_id in self._unsaved:
                continue
            task = asyncio.create_task(
                self._deliver(session, webhook_id, claim, job_id, url, body, attempts)
            )
            self._in_flight[webhook_id] = task
            task.add_done_callback(functools.partial(self._done, webhook_id))

    def _done(self, webhook_id: int, _task: object) -> None:
        self._in_flight.pop(webhook_id, None)
        self.wake()  # its next try may be due before anything else

    async def _deliver(
        self,
        session: aiohttp.ClientSession,
        webhook_id: int,
        claim: str,
        job_id: str,
        url: str,
        body: bytes,
        attempts: int,
    ) -> None:
        async with self._slot(url):
            # a delivery may wait long for its origin's slot: send it only if it is still ours
            try:
                ours = await self._store.hold_webhook(webhook_id, claim, HOLD + self._timeout)
            except Exception as exc:  # cannot tell: it stays claimed and is tried again later
                log.warning("webhook for job %s: its claim cannot be checked: %s", job_id, exc)
                return
            if not ours:
                log.info("webhook for job %s: another process has it now", job_id)
                return
            error, retry = await self._post(session, url, body, webhook_id)
        attempts += 1
        if error is None:
            log.info("webhook for job %s delivered to %s", job_id, url)
            state, delay = "delivered", 0.0
        elif retry and attempts <= len(self._delays):
            delay = self._delays[attempts - 1]
            log.warning(
                "webhook for job %s to %s failed (%s); try %d in %.0f s",
                job_id,
                url,
                error,
                attempts + 1,
                delay,
            )
            state = "pending"
        else:
            log.error(
                "webhook for job %s to %s given up after %d tries: %s", job_id, url, attempts, error
            )
            state, delay = "failed", 0.0
        if not await self._save(webhook_id, claim, state, attempts, delay, error or ""):
            log.error("webhook for job %s: its state cannot be saved now; saved later", job_id)

    async def _save(
        self, webhook_id: int, claim: str, state: str, attempts: int, delay: float, error: str
    ) -> bool:
        """Record an outcome (True), or keep it to record later when the database cannot be
        written (False). An outcome whose claim was taken over is dropped: the other process
        owns the delivery now."""
        try:
            await self._store.update_webhook(
                webhook_id, claim, state=state, attempts=attempts, delay=delay, error=error
            )
        except Exception:  # the database cannot be written: keep the outcome, try again later
            self._unsaved[webhook_id] = (claim, state, attempts, delay, error)
            return False
        self._unsaved.pop(webhook_id, None)
        return True

    def _slot(self, url: str) -> contextlib.AbstractAsyncContextManager[None]:
        """One of the receiving origin's :data:`PER_ORIGIN` slots."""
        try:
            parsed = URL(url)
            origin = f"{parsed.scheme}://{parsed.host}:{parsed.port}"
        except ValueError:
            origin = url
        return self._origins.hold(origin)

    async def _post(
        self, session: aiohttp.ClientSession, url: str, body: bytes, delivery: int
    ) -> tuple[str | None, bool]:
        """(None, _) when delivered, else (the error, whether to try again)."""
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: str(delivery)}
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
        try:
            target = self._policy.check(url)
            async with session.post(
                target, data=body, headers=headers, allow_redirects=False
            ) as response:
                if 200 <= response.status < 300:
                    return None, False
                return f"HTTP {response.status}", response.status >= 500 or response.status in (
                    408,
                    429,
                )
        except BlockedAddress as exc:
            return f"refused: {exc}", False
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return str(exc) or type(exc).__name__, True
        except ValueError as exc:  # e.g. a host name IDNA cannot encode: it will never work
            return f"unusable URL: {exc}", False
