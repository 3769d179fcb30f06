"""A wire-level fake Discord (REST under /api/v10, a websocket gateway, a CDN) on 127.0.0.1 that
the real discord.py connects to, for end-to-end tests of the bot without a Discord account.

    fd = FakeDiscord(token="bot-token", token_life=900.0, ack_deadline=3.0)
    await fd.start()                                   # fd.api_base, fd.gateway_url, fd.cdn_base
    point_discord_py_at(fd.api_base, fd.gateway_url)   # or DISCORD_API_BASE / DISCORD_GATEWAY_URL
    inter = await fd.slash("imagine", {"prompt": "a cat"}, user=fd.add_user("alice"))
    await fd.wait_for(lambda: inter.original and inter.original["attachments"])
    click = await fd.click(inter.original_id, "mj:...:U1")
    assert fd.errors == []                             # no Discord rule was broken

Rules enforced, with Discord's error bodies: ack within the deadline (10062), one ack (40060),
token life (401 50027), custom_id <= 100, <= 5 rows x 5 buttons, unique custom_ids, content
<= 2000 (50035), non-empty messages (50006), uploads <= 10 MiB per request (413 40005), channel
permissions (403 50013; in threads, made by fd.add_thread, posting takes Send Messages in Threads
instead of Send Messages), command registration rules. Injected failures: fd.fail_next(...).
FakeDiscord(port=N) starts on a fixed port, where a bot may already be trying to reach it.
"""

from __future__ import annotations

from tests.fakediscord.records import FakeInteraction
from tests.fakediscord.rules import DiscordError
from tests.fakediscord.running import run_bot
from tests.fakediscord.server import FakeDiscord

__all__ = ["DiscordError", "FakeDiscord", "FakeInteraction", "point_discord_py_at", "run_bot"]


def point_discord_py_at(api_base: str, gateway_url: str) -> None:
    """Send this process's discord.py to the fake: REST routes and the gateway (a non-sharded
    client never asks GET /gateway/bot, it connects to DEFAULT_GATEWAY)."""
    import discord.gateway
    import discord.http
    import yarl

    discord.http.Route.BASE = api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
