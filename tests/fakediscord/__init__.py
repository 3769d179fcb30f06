"""A wire-level fake Discord (REST under /api/v10, a websocket gateway, a CDN) on 127.0.0.1 that
the real discord.py connects to, for end-to-end tests of the bot without a Discord account.

    fd = FakeDiscord(token="bot-token", token_life=900.0, ack_deadline=3.0)
    await fd.start()                                   # fd.api_base, fd.gateway_url, fd.cdn_base
    point_discord_py_at(fd.api_base, fd.gateway_url)   # or DISCORD_API_BASE / DISCORD_GATEWAY_URL
    inter = await fd.slash("imagine", {"prompt": "a cat"}, user=fd.add_user("alice"))
    await fd.wait_for(lambda: inter.original and inter.original["attachments"])
    click = await fd.click(inter.original_id, "mj:...:U1")
    assert fd.errors == []                             # no Discord rule was broken

The user's side (each refuses, with LookupError / ValueError / TypeError, what the client could
not send): fd.slash, fd.click, fd.select; fd.submit_modal(inter, {custom_id: value}) fills in
the modal the bot answered `inter` with (recorded, validated, as `inter.modal`) and sends a
MODAL_SUBMIT; fd.message_command(name, message_id) runs a message context menu command;
fd.react / fd.unreact(message_id, "✉️") add and take back a reaction (MESSAGE_REACTION_ADD /
_REMOVE, to sessions with the reactions intent). The world: fd.add_user(name, permissions=...)
for members with extra guild permissions (a role of their own), fd.add_channel, fd.add_thread,
fd.block_dms(user_id) for users who closed their DMs; the bot's DMs (POST /users/@me/channels)
are read back with fd.dm_messages(user_id).

Rules enforced, with Discord's error bodies: ack within the deadline (10062), one ack (40060),
token life (401 50027), custom_id <= 100, <= 5 rows x 5 buttons, unique custom_ids, content
<= 2000 (50035), non-empty messages (50006), uploads <= 10 MiB per request (413 40005), channel
permissions (403 50013; in threads, made by fd.add_thread, posting takes Send Messages in Threads
instead of Send Messages), command registration rules (chat input, user and message context
menus), modals (title, 1-5 components, text inputs and labels; only as the first callback; never
in answer to a modal submit), gateway intents per event, closed DMs (403 50007). Injected
failures: fd.fail_next(...).
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
