"""The websocket gateway (https://discord.com/developers/docs/events/gateway): HELLO, IDENTIFY →
READY + GUILD_CREATE, heartbeats, dispatches with sequence numbers, RECONNECT and RESUME with replay
of missed events, INVALID_SESSION, member chunks, and zlib-stream transport compression when asked.

Sharding: a session that identifies with ``shard: [id, count]`` gets the guild and its events only
when ``(guild_id >> 22) % count == id``, as on Discord; events of no guild (DMs) go to shard 0."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakediscord.intents import required_intent
from tests.fakediscord.records import JSON
from tests.fakediscord.state import World

DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE, RESUME, RECONNECT = 0, 1, 2, 3, 6, 7
REQUEST_MEMBERS, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 8, 9, 10, 11
# close codes (https://discord.com/developers/docs/topics/opcodes-and-status-codes#gateway-close-event-codes)
UNKNOWN_OPCODE, DECODE_ERROR, NOT_AUTHENTICATED, AUTH_FAILED, ALREADY_AUTHENTICATED = (
    4001,
    4002,
    4003,
    4004,
    4005,
)
INVALID_SHARD, INVALID_API_VERSION = 4010, 4012


@dataclass(eq=False)
class Connection:
    ws: web.WebSocketResponse
    path: str
    zlib_stream: bool
    # payloads to send in order; an int closes the socket with that code, None stops the writer
    outbox: asyncio.Queue[JSON | int | None] = field(default_factory=asyncio.Queue)
    compressor: Any = field(default_factory=zlib.compressobj)


@dataclass
class Session:
    id: str
    intents: int
    seq: int = 0
    sent: list[JSON] = field(default_factory=list)  # every dispatch, for replay on RESUME
    connection: Connection | None = None
    invalidated: bool = False
    shard: tuple[int, int] | None = None
    """(shard id, shard count) from IDENTIFY; None = an unsharded session, which gets everything."""

    def receives(self, data: object) -> bool:
        """Whether an event with this payload reaches this session (Discord's shard formula)."""
        if self.shard is None:
            return True
        shard_id, count = self.shard
        guild_id = data.get("guild_id") if isinstance(data, dict) else None
        if guild_id is None:
            return shard_id == 0
        return (int(guild_id) >> 22) % count == shard_id


class Gateway:
    def __init__(self, world: World, heartbeat_interval: float) -> None:
        self.world = world
        self.heartbeat_interval = heartbeat_interval
        self.sessions: dict[str, Session] = {}
        self.log: list[JSON] = []
        self.opened: list[JSON] = []  # every socket opened: path, query, time
        self.connections: set[Connection] = set()
        self.resume_url = ""
        world.dispatch = self.dispatch

    # --- controls for tests -----------------------------------------------------------------

    def live_sessions(self) -> list[Session]:
        return [s for s in self.sessions.values() if s.connection is not None and not s.invalidated]

    def request_reconnect(self) -> None:
        """Send op 7 RECONNECT to every connected session; clients resume on resume_gateway_url."""
        for session in self.live_sessions():
            self._send(session, {"op": RECONNECT, "d": None})

    def invalidate_sessions(self) -> None:
        for session in self.live_sessions():
            session.invalidated = True
            self._send(session, {"op": INVALID_SESSION, "d": False})

    async def drop_connections(self, code: int = 4000) -> None:
        """Close every socket from the server side, as a Discord edge restart does."""
        for connection in list(self.connections):
            await connection.ws.close(code=code)

    async def close(self) -> None:
        await self.drop_connections(1001)

    # --- dispatch ---------------------------------------------------------------------------

    def dispatch(self, event: str, data: JSON) -> None:
        for session in self.sessions.values():
            if session.invalidated:
                continue
            needed = required_intent(event, data)
            if needed and not session.intents & needed:
                continue
            if not session.receives(data):
                continue
            session.seq += 1
            payload = {"op": DISPATCH, "t": event, "s": session.seq, "d": data}
            session.sent.append(payload)
            if session.connection is not None:
                self._send(session, payload)

    def _send(self, session: Session, payload: JSON) -> None:
        assert session.connection is not None
        session.connection.outbox.put_nowait(payload)

    async def _writer(self, connection: Connection, session_of: dict[str, Session | None]) -> None:
        while (payload := await connection.outbox.get()) is not None:
            if isinstance(payload, int):
                await connection.ws.close(code=payload)
                return
            if connection.ws.closed:
                continue  # a dispatch stays in the session's buffer and is replayed on RESUME
            session = session_of["session"]
            self.log.append(
                {
                    "direction": "to_bot",
                    "session_id": session.id if session else None,
                    "time": time.monotonic(),
                    "payload": payload,
                }
            )
            text = json.dumps(payload)
            try:
                if connection.zlib_stream:
                    compressor = connection.compressor
                    data = compressor.compress(text.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH)
                    await connection.ws.send_bytes(data)
                else:
                    await connection.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                continue  # the bot went away mid-send; RESUME replays from the buffer

    # --- the socket -------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=4 * 1024 * 1024)
        await ws.prepare(request)
        query = request.query
        connection = Connection(ws, request.path, query.get("compress") == "zlib-stream")
        self.opened.append({"path": request.path, "query": dict(query), "time": time.monotonic()})
        if query.get("v") not in (None, "10") or query.get("encoding", "json") != "json":
            await ws.close(code=INVALID_API_VERSION if query.get("v") != "10" else DECODE_ERROR)
            return ws
        holder: dict[str, Session | None] = {"session": None}
        self.connections.add(connection)
        writer = asyncio.create_task(self._writer(connection, holder))
        connection.outbox.put_nowait(
            {"op": HELLO, "d": {"heartbeat_interval": int(self.heartbeat_interval * 1000)}}
        )
        try:
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                try:
                    payload = json.loads(message.data)
                except ValueError:
                    await ws.close(code=DECODE_ERROR)
                    break
                self.log.append(
                    {
                        "direction": "from_bot",
                        "session_id": holder["session"].id if holder["session"] else None,
                        "time": time.monotonic(),
                        "payload": payload,
                    }
                )
                close_code = self._receive(connection, holder, payload)
                if close_code is not None:
                    connection.outbox.put_nowait(close_code)  # after the replies already queued
                    break
        finally:
            self.connections.discard(connection)
            session = holder["session"]
            if session is not None and session.connection is connection:
                session.connection = None
            connection.outbox.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        return ws

    def _receive(
        self, connection: Connection, holder: dict[str, Session | None], payload: JSON
    ) -> int | None:
        op, data = payload.get("op"), payload.get("d")
        session = holder["session"]
        if op == HEARTBEAT:
            connection.outbox.put_nowait({"op": HEARTBEAT_ACK})
            return None
        if op == IDENTIFY:
            if session is not None:
                return ALREADY_AUTHENTICATED
            if not isinstance(data, dict) or data.get("token") != self.world.token:
                return AUTH_FAILED
            shard = data.get("shard")
            if shard is not None and not _valid_shard(shard):
                return INVALID_SHARD
            holder["session"] = self._identify(connection, data)
            return None
        if op == RESUME:
            return self._resume(connection, holder, data or {})
        if session is None:
            return NOT_AUTHENTICATED
        if op == REQUEST_MEMBERS:
            self._member_chunk(session, data or {})
            return None
        if op == PRESENCE:
            return None
        return UNKNOWN_OPCODE

    def _identify(self, connection: Connection, data: JSON) -> Session:
        session = Session(uuid.uuid4().hex, int(data.get("intents") or 0))
        if data.get("shard") is not None:
            session.shard = (int(data["shard"][0]), int(data["shard"][1]))
        session.connection = connection
        self.sessions[session.id] = session
        w = self.world
        held = session.receives({"guild_id": w.guild_id})
        ready: JSON = {
            "v": 10,
            "user": {**w.bot_user, "verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": w.guild_id, "unavailable": True}] if held else [],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_url,
            "application": {"id": w.application_id, "flags": 1 << 19},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "auth": {},
        }
        if data.get("shard") is not None:
            ready["shard"] = data["shard"]
        self._dispatch_to(session, "READY", ready)
        if held:
            self._dispatch_to(session, "GUILD_CREATE", w.guild())
        return session

    def _resume(
        self, connection: Connection, holder: dict[str, Session | None], data: JSON
    ) -> int | None:
        session = self.sessions.get(str(data.get("session_id")))
        if data.get("token") != self.world.token:
            return AUTH_FAILED
        if session is None or session.invalidated or holder["session"] is not None:
            connection.outbox.put_nowait({"op": INVALID_SESSION, "d": False})
            return None
        if session.connection is not None:
            session.connection.outbox.put_nowait(4000)  # the session moves to the new socket
        session.connection = connection
        holder["session"] = session
        last = int(data.get("seq") or 0)
        for payload in session.sent:
            if payload["s"] > last:
                connection.outbox.put_nowait(payload)
        self._dispatch_to(session, "RESUMED", {})
        return None

    def _member_chunk(self, session: Session, data: JSON) -> None:
        guild = self.world.guild()
        if not session.receives({"guild_id": guild["id"]}):
            return  # Discord answers only for the guilds of the shard that asks
        chunk = {
            "guild_id": guild["id"],
            "members": guild["members"],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
            "presences": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        self._dispatch_to(session, "GUILD_MEMBERS_CHUNK", chunk)

    def _dispatch_to(self, session: Session, event: str, data: JSON) -> None:
        session.seq += 1
        payload = {"op": DISPATCH, "t": event, "s": session.seq, "d": data}
        session.sent.append(payload)
        self._send(session, payload)


def _valid_shard(shard: object) -> bool:
    """IDENTIFY's ``shard``: [shard_id, num_shards] with 0 <= shard_id < num_shards."""
    if not isinstance(shard, list) or len(shard) != 2:
        return False
    shard_id, count = shard
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in shard):
        return False
    return bool(0 <= shard_id < count)
