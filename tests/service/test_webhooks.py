"""Webhooks: the completed message is POSTed, signed, and retried until the receiver takes it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from imagine.netguard import UrlPolicy
from imagine.store import JobStore
from imagine.webhooks import SIGNATURE_HEADER, WebhookSender, sign
from tests.service.conftest import ClientFactory, submit, wait_done


class Receiver:
    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.hits = 0
        self.bodies: list[tuple[bytes, str | None]] = []
        app = web.Application()
        app.router.add_post("/hook", self.hook)
        self.server = TestServer(app, host="127.0.0.1")

    async def hook(self, request: web.Request) -> web.Response:
        self.hits += 1
        if self.hits <= self.failures:
            return web.Response(status=503)
        self.bodies.append((await request.read(), request.headers.get(SIGNATURE_HEADER)))
        return web.Response(text="ok")

    @property
    def url(self) -> str:
        return str(self.server.make_url("/hook"))


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_webhook_override_gets_the_completed_message_signed(
    make_client: ClientFactory,
) -> None:
    receiver = Receiver()
    await receiver.server.start_server()
    try:
        client = await make_client(webhook_secret="shh")
        accepted = await submit(client, "a kite", ref="r1", webhookOverride=receiver.url)
        done = await wait_done(client, accepted["messageId"])
        await _until(lambda: receiver.bodies)
        body, signature = receiver.bodies[0]
        assert json.loads(body) == done
        assert signature == sign("shh", body)
    finally:
        await receiver.server.close()


async def test_webhook_is_retried_with_backoff_until_delivered(make_client: ClientFactory) -> None:
    receiver = Receiver(failures=3)
    await receiver.server.start_server()
    try:
        client = await make_client(
            webhook_url=receiver.url, webhook_retry_delays=(0.05, 0.1, 0.2, 0.4, 0.8)
        )
        accepted = await submit(client, "a boat")
        await wait_done(client, accepted["messageId"])
        await _until(lambda: receiver.bodies)
        assert receiver.hits == 4
        assert json.loads(receiver.bodies[0][0])["originatingMessageId"] == accepted["messageId"]
        assert receiver.bodies[0][1] is None  # no secret, no signature
    finally:
        await receiver.server.close()


async def test_webhook_to_a_private_address_is_refused_unless_allowed(
    make_client: ClientFactory,
) -> None:
    client = await make_client(allow_private_urls=False)
    response = await client.post(
        "/v2/imagine", json={"msg": "a cat", "webhookOverride": "http://127.0.0.1:9/hook"}
    )
    data = await response.json()
    assert response.status == 400
    assert data["code"] == "INVALID_LINK"
    assert "private or local" in data["msg"]


async def test_default_retry_schedule_spans_at_least_two_minutes() -> None:
    from imagine.settings import Settings

    delays = Settings().webhook_retry_delays
    assert len(delays) >= 4  # ≥ 5 tries
    assert sum(delays) >= 120


async def test_a_pending_webhook_survives_a_restart(make_client: ClientFactory) -> None:
    receiver = Receiver(failures=1)
    await receiver.server.start_server()
    try:
        delays = (1.0, 1.0, 1.0, 1.0, 1.0)
        client = await make_client(webhook_url=receiver.url, webhook_retry_delays=delays)
        accepted = await submit(client, "a bridge")
        await wait_done(client, accepted["messageId"])
        await _until(lambda: receiver.hits == 1)  # the first try failed; the retry is due in 1 s
        await client.close()
        assert receiver.bodies == []

        await make_client(webhook_url=receiver.url, webhook_retry_delays=delays)
        await _until(lambda: receiver.bodies)
        assert json.loads(receiver.bodies[0][0])["originatingMessageId"] == accepted["messageId"]
    finally:
        await receiver.server.close()


async def test_an_unusable_webhook_url_does_not_stop_the_others(make_client: ClientFactory) -> None:
    receiver = Receiver()
    await receiver.server.start_server()
    try:
        client = await make_client()
        # a host label over 63 characters: IDNA refuses it before any look-up, on every try
        bad = await submit(client, "a moth", webhookOverride=f"http://{'a' * 64}.example/hook")
        await wait_done(client, bad["messageId"])
        good = await submit(client, "a lamp", webhookOverride=receiver.url)
        await wait_done(client, good["messageId"])
        await _until(lambda: receiver.bodies)
        assert json.loads(receiver.bodies[0][0])["originatingMessageId"] == good["messageId"]
    finally:
        await receiver.server.close()


async def test_slow_receiver_does_not_hold_up_another(make_client: ClientFactory) -> None:
    fast = Receiver()
    slow_hits: list[float] = []
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        slow_hits.append(1.0)
        await release.wait()
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hang)
    slow = TestServer(app, host="127.0.0.1")
    await fast.server.start_server()
    await slow.start_server()
    try:
        client = await make_client()
        first = await submit(client, "one", webhookOverride=str(slow.make_url("/hook")))
        await wait_done(client, first["messageId"])
        await _until(lambda: slow_hits)
        second = await submit(client, "two", webhookOverride=fast.url)
        await wait_done(client, second["messageId"])
        await _until(lambda: fast.bodies, timeout=3.0)
    finally:
        release.set()
        await fast.server.close()
        await slow.close()


async def test_the_sender_stops_when_a_wake_comes_with_the_shutdown(tmp_path: Path) -> None:
    # A job that finishes wakes the sender; if that lands in the same tick as the shutdown's
    # cancel, the sender must still stop (3.11's wait_for lost such a cancel: shutdown hung).
    store = await JobStore.open(tmp_path / "jobs.sqlite3")
    try:
        for _ in range(20):
            sender = WebhookSender(store, secret="", delays=(1.0,), policy=UrlPolicy())
            task = asyncio.create_task(sender.run())
            await asyncio.sleep(0.01)  # idle, waiting to be woken
            sender.wake()
            task.cancel()
            async with asyncio.timeout(2.0):
                await asyncio.gather(task, return_exceptions=True)
            assert task.cancelled()
    finally:
        await store.close()
