"""Webhooks: the completed message is POSTed, signed, and retried until the receiver takes it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from imagine.netguard import UrlPolicy
from imagine.store import SQLiteStore
from imagine.webhooks import SIGNATURE_HEADER, WebhookSender, sign
from tests.backends import on_both_databases as backend  # noqa: F401 (a fixture: every test on each)
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


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("a" * 64 + ".example", "label of 64 characters"),
        ("203.0.113.9.", "cannot end with a dot"),
        ("exa mple.com", "has a space"),
        ("a..example", "empty label"),
    ],
)
async def test_a_webhook_url_that_can_never_be_delivered_is_refused_at_submission(
    make_client: ClientFactory, host: str, problem: str
) -> None:
    receiver = Receiver()
    await receiver.server.start_server()
    try:
        client = await make_client()
        response = await client.post(
            "/v2/imagine", json={"msg": "a moth", "webhookOverride": f"http://{host}/hook"}
        )
        body = await response.json()
        assert response.status == 400, body
        assert body["code"] == "INVALID_LINK"
        assert "webhookOverride" in body["msg"]
        assert problem in body["msg"]
        assert (await (await client.get("/v2/info")).json())["queued"] == 0  # nothing was taken
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
    store = await SQLiteStore.open(tmp_path / "jobs.sqlite3")
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


async def _unrelated_webhook_arrives_at_once(client: Any, fast: Receiver) -> None:
    """A job with its own receiver, submitted now: its webhook arrives within 2 s of its end."""
    other = await submit(client, "an unrelated kite", webhookOverride=fast.url)
    await wait_done(client, other["messageId"])
    finished = asyncio.get_running_loop().time()
    await _until(lambda: fast.bodies, timeout=10.0)
    waited = asyncio.get_running_loop().time() - finished
    assert waited < 2.0, f"the unrelated webhook came {waited:.1f} s after its job finished"
    assert json.loads(fast.bodies[0][0])["originatingMessageId"] == other["messageId"]


async def test_a_hanging_receiver_with_32_deliveries_holds_up_nobody_else(
    make_client: ClientFactory,
) -> None:
    """One --repeat 32 to a peer that accepts connections and never answers: it holds only its
    own origin's slots, so an unrelated job's webhook still arrives at once."""
    held: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read()  # until the sender gives up and hangs up

    hanging = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = hanging.sockets[0].getsockname()[1]
    fast = Receiver()
    await fast.server.start_server()
    try:
        client = await make_client(rate_per_user=0)
        burst = await submit(
            client, "a lantern --repeat 32", webhookOverride=f"http://127.0.0.1:{port}/hook"
        )
        assert len(burst["messageIds"]) == 32
        for message_id in burst["messageIds"]:
            await wait_done(client, message_id, timeout=60)
        await _until(lambda: held)  # the hanging peer is holding deliveries now
        await _unrelated_webhook_arrives_at_once(client, fast)
        assert len(held) <= 4  # the hanging origin never had more than its own slots
    finally:
        for writer in held:
            writer.close()
        hanging.close()
        await fast.server.close()


async def test_hanging_receivers_on_many_origins_hold_up_nobody_else(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """26 hanging origins × 4 slots = 104 deliveries held at once: more than aiohttp's default
    pool of 100 connections, which used to make everyone else's webhooks wait."""
    # Each delivery is held up to a minute (not 10 s), so the first ones are still hanging when
    # the last of the 104 jobs is done, however loaded the machine.
    monkeypatch.setattr(WebhookSender.__init__, "__kwdefaults__", {"timeout": 60.0})
    held: list[asyncio.StreamWriter] = []
    open_now: set[asyncio.StreamWriter] = set()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        open_now.add(writer)
        await reader.read()
        open_now.discard(writer)

    servers = [await asyncio.start_server(never_answer, "127.0.0.1", 0) for _ in range(26)]
    fast = Receiver()
    await fast.server.start_server()
    try:
        client = await make_client(rate_per_user=0, rate_per_token=0)
        for server in servers:
            port = server.sockets[0].getsockname()[1]
            burst = await submit(
                client, "a lantern --repeat 4", webhookOverride=f"http://127.0.0.1:{port}/h"
            )
            for message_id in burst["messageIds"]:
                await wait_done(client, message_id, timeout=60)
        await _until(lambda: len(open_now) >= 100, timeout=20)
        await _unrelated_webhook_arrives_at_once(client, fast)
    finally:
        for writer in held:
            writer.close()
        for server in servers:
            server.close()
        await fast.server.close()
