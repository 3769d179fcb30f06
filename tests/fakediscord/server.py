"""FakeDiscord: REST, gateway and CDN on one aiohttp server bound to 127.0.0.1, plus the user's
side of Discord (actions.py: slash commands, clicks, modals, reactions) and everything a test
wants to assert on."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from typing import TypeVar

import aiohttp
from aiohttp import web

from tests.fakediscord import cdn, dms, rest
from tests.fakediscord.actions import UserActions
from tests.fakediscord.gateway import Gateway, Session
from tests.fakediscord.http import Plumbing
from tests.fakediscord.records import JSON, FakeInteraction
from tests.fakediscord.rules import DEFAULT_UPLOAD_LIMIT
from tests.fakediscord.state import World

T = TypeVar("T")
MAX_REQUEST = 64 * 1024 * 1024  # read oversize uploads fully, then refuse them the way Discord does
GUILDS_INTENT, GUILD_MEMBERS_INTENT = 1 << 0, 1 << 1


class FakeDiscord(UserActions):
    def __init__(
        self,
        token: str = "bot-token",
        token_life: float = 900.0,
        ack_deadline: float = 3.0,
        *,
        upload_limit: int = DEFAULT_UPLOAD_LIMIT,
        heartbeat_interval: float = 41.25,
        port: int = 0,  # 0: any free one; fixed: where a bot is already trying to reach Discord
    ) -> None:
        self.world = World(
            token, upload_limit=upload_limit, ack_deadline=ack_deadline, token_life=token_life
        )
        self.gateway = Gateway(self.world, heartbeat_interval)
        self.plumbing = Plumbing(self.world)
        self.port = port
        self._runner: web.AppRunner | None = None
        self._deadline_timers: list[asyncio.TimerHandle] = []

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(middlewares=[self.plumbing.middleware], client_max_size=MAX_REQUEST)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/resume-gateway", self.gateway.handle)
        app.router.add_routes(cdn.routes(self.world))
        app.router.add_routes(rest.routes(self.world))
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        base = f"127.0.0.1:{self.port}"
        self.world.cdn_base = f"http://{base}"
        self.world.gateway_url = f"ws://{base}/gateway"
        self.gateway.resume_url = f"ws://{base}/resume-gateway"

    async def close(self) -> None:
        for timer in self._deadline_timers:
            timer.cancel()
        await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- addresses and identities -----------------------------------------------------------

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return self.world.gateway_url

    @property
    def cdn_base(self) -> str:
        return self.world.cdn_base

    @property
    def token(self) -> str:
        return self.world.token

    @property
    def application_id(self) -> str:
        return self.world.application_id

    @property
    def bot_user(self) -> JSON:
        return self.world.bot_user

    @property
    def owner(self) -> JSON:
        return self.world.owner

    @property
    def guild_id(self) -> str:
        return self.world.guild_id

    @property
    def channel_id(self) -> str:
        return self.world.channel_id

    # --- the world --------------------------------------------------------------------------

    def add_user(self, name: str, permissions: int | None = None) -> JSON:
        """A guild member. `permissions` (e.g. 1 << 5 Manage Guild): granted by a role of their
        own on top of @everyone's, so their interactions carry @everyone's | these bits in
        `member.permissions` (all bits if it includes Administrator); None: @everyone's only."""
        user = self.world.add_user(name, permissions)
        for role in self.world.roles:
            if role["id"] in self.world.member_roles.get(user["id"], []):
                data = {"guild_id": self.guild_id, "role": role}
                self._dispatch_if(GUILDS_INTENT, "GUILD_ROLE_CREATE", data)
        self._dispatch_if(
            GUILD_MEMBERS_INTENT,
            "GUILD_MEMBER_ADD",
            {**self.world.member(user), "guild_id": self.guild_id},
        )
        return user

    def add_channel(self, name: str, permissions: int | None = None) -> JSON:
        """A text channel; `permissions` is the bot's effective permission integer there."""
        channel = self.world.add_channel(name, permissions)
        self._dispatch_if(GUILDS_INTENT, "CHANNEL_CREATE", channel)
        return channel

    def add_thread(self, parent_id: str, name: str) -> JSON:
        """A public thread in a channel; the bot's permissions there are the channel's."""
        thread = self.world.add_thread(parent_id, name)
        self._dispatch_if(GUILDS_INTENT, "THREAD_CREATE", {**thread, "newly_created": True})
        return thread

    def _dispatch_if(self, intent: int, event: str, data: JSON) -> None:
        if any(s.intents & intent for s in self.gateway.sessions.values()):
            self.world.dispatch(event, data)

    def block_dms(self, user_id: str, blocked: bool = True) -> None:
        """The user accepts no DMs from the bot: its posts there fail with 403 50007."""
        (self.world.blocked_dms.add if blocked else self.world.blocked_dms.discard)(user_id)

    # --- observing --------------------------------------------------------------------------

    @property
    def ack_deadline(self) -> float:
        return self.world.ack_deadline

    @ack_deadline.setter
    def ack_deadline(self, seconds: float) -> None:
        self.world.ack_deadline = seconds

    @property
    def token_life(self) -> float:
        return self.world.token_life

    @token_life.setter
    def token_life(self, seconds: float) -> None:
        self.world.token_life = seconds

    @property
    def gateway_connections(self) -> list[JSON]:
        """Every websocket opened on the gateway: path (/gateway or /resume-gateway) and query."""
        return self.gateway.opened

    @property
    def calls(self) -> list[JSON]:
        return self.world.calls

    @property
    def errors(self) -> list[JSON]:
        return self.world.errors

    @property
    def gateway_log(self) -> list[JSON]:
        return self.gateway.log

    @property
    def sessions(self) -> list[Session]:
        return list(self.gateway.sessions.values())

    @property
    def interactions(self) -> list[FakeInteraction]:
        return list(self.world.interactions.values())

    def messages(
        self, channel_id: str | None = None, *, include_deleted: bool = False
    ) -> list[JSON]:
        """Messages of a channel (default: the default channel) in creation order, ephemeral ones
        and interaction responses included, each with its `edits` history."""
        channel_id = channel_id or self.channel_id
        return [
            m.view()
            for m in self.world.messages.values()
            if m.payload["channel_id"] == channel_id and (include_deleted or not m.deleted)
        ]

    def dm_messages(self, user_id: str, *, include_deleted: bool = False) -> list[JSON]:
        """What the bot posted in its DM channel with this user (none if it never opened one)."""
        channel_id = dms.dm_channel_id(self.world, user_id)
        return (
            [] if channel_id is None else self.messages(channel_id, include_deleted=include_deleted)
        )

    def message(self, message_id: str) -> JSON:
        return self.world.messages[message_id].view()

    def registered_commands(self, guild_id: str | None = None) -> list[JSON]:
        return copy.deepcopy(self.world.commands.get(guild_id, []))

    async def read_attachment(self, attachment: JSON) -> bytes:
        async with aiohttp.ClientSession() as session, session.get(attachment["url"]) as response:
            response.raise_for_status()
            return await response.read()

    async def wait_for(
        self, predicate: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.02
    ) -> T:
        """Poll until `predicate()` is truthy and return its value."""
        deadline = time.monotonic() + timeout
        while not (value := predicate()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            await asyncio.sleep(interval)
        return value

    async def wait_for_session(self, count: int = 1, timeout: float = 10.0) -> Session:
        """Wait until `count` sessions have identified and one is connected; return the newest."""
        await self.wait_for(
            lambda: len(self.gateway.sessions) >= count and self.gateway.live_sessions(), timeout
        )
        return self.gateway.live_sessions()[-1]

    # --- failures and reconnects ------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int = 500,
        count: int = 1,
        retry_after: float | None = None,
    ) -> None:
        """The next `count` calls matching method ("*" for any) and path (after /api/v10) fail."""
        self.plumbing.fail_next(method, path_regex, status, count, retry_after)

    def request_reconnect(self) -> None:
        self.gateway.request_reconnect()

    def invalidate_sessions(self) -> None:
        self.gateway.invalidate_sessions()

    async def drop_connections(self, code: int = 4000) -> None:
        await self.gateway.drop_connections(code)
