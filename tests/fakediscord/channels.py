"""Channel routes: the channel, its history, typing, and messages the bot posts, edits and
deletes itself, with the permission checks Discord applies to a bot (not to interaction webhooks)."""

from __future__ import annotations

from aiohttp import web

from tests.fakediscord import dms, payloads
from tests.fakediscord.http import body_of, json_response, no_content, uploads_of
from tests.fakediscord.records import JSON
from tests.fakediscord.rules import (
    CANNOT_EDIT_OTHERS_MESSAGE,
    UNKNOWN_MESSAGE,
    DiscordError,
    check_message_body,
    check_upload_size,
    form_error,
)
from tests.fakediscord.state import World

# a bot may set SUPPRESS_EMBEDS, SUPPRESS_NOTIFICATIONS and IS_COMPONENTS_V2 on a channel message
SETTABLE_CHANNEL_FLAGS = 4 | 4096 | 32768
REPLY = 19


class ChannelApi:
    def __init__(self, world: World) -> None:
        self.world = world

    async def channel(self, request: web.Request) -> web.Response:
        return json_response(self.world.channel(request.match_info["channel_id"]))

    async def typing(self, request: web.Request) -> web.Response:
        channel_id = request.match_info["channel_id"]
        self.world.channel(channel_id)
        self.world.require_send(channel_id)
        return no_content()

    async def channel_history(self, request: web.Request) -> web.Response:
        channel_id = request.match_info["channel_id"]
        self.world.channel(channel_id)
        self.world.require_permission(
            channel_id, payloads.VIEW_CHANNEL | payloads.READ_MESSAGE_HISTORY
        )
        limit = min(100, int(request.query.get("limit", "50")))
        visible = [
            m.payload
            for m in self.world.messages.values()
            if m.payload["channel_id"] == channel_id and not m.deleted and not m.ephemeral
        ]
        return json_response(list(reversed(visible))[:limit])

    # --- channel messages -------------------------------------------------------------------

    async def create_message(self, request: web.Request) -> web.Response:
        w, channel_id = self.world, request.match_info["channel_id"]
        w.channel(channel_id)
        body, uploads = body_of(request), uploads_of(request)
        w.require_permission(channel_id, payloads.VIEW_CHANNEL)
        w.require_send(channel_id)
        dms.require_open(w, channel_id)
        if uploads:
            w.require_permission(channel_id, payloads.ATTACH_FILES)
        check_upload_size([(u.filename, u.data) for u in uploads], w.upload_limit)
        check_message_body(body, creating=True, has_files=bool(uploads))
        message_type, extra = 0, self._reply(channel_id, body.get("message_reference"))
        if extra:
            message_type = REPLY
        body = {**body, "flags": int(body.get("flags") or 0) & SETTABLE_CHANNEL_FLAGS}
        stored = w.create_message(
            channel_id, body, uploads, author=w.bot_user, message_type=message_type, extra=extra
        )
        return json_response(stored.payload)

    def _reply(self, channel_id: str, reference: JSON | None) -> JSON:
        if not reference:
            return {}
        message_id = str(reference.get("message_id"))
        target = self.world.messages.get(message_id)
        target_channel = str(reference.get("channel_id") or channel_id)
        if (
            target is None
            or target.deleted
            or target.ephemeral
            or target.payload["channel_id"] != target_channel
        ):
            if reference.get("fail_if_not_exists", True):
                raise form_error(
                    ["message_reference"], "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                )
            return {}
        return {
            "message_reference": {
                "type": 0,
                "message_id": message_id,
                "channel_id": channel_id,
                **(
                    {"guild_id": target.payload["guild_id"]} if "guild_id" in target.payload else {}
                ),
            },
            "referenced_message": target.payload,
        }

    def _own_message(self, request: web.Request) -> tuple[str, str]:
        channel_id, message_id = request.match_info["channel_id"], request.match_info["message_id"]
        self.world.channel(channel_id)
        stored = self.world.message(message_id, channel_id)
        if stored.ephemeral:  # ephemeral messages exist only for their interaction's token
            raise DiscordError(404, UNKNOWN_MESSAGE, "Unknown Message")
        return channel_id, message_id

    async def get_message(self, request: web.Request) -> web.Response:
        channel_id, message_id = self._own_message(request)
        self.world.require_permission(channel_id, payloads.READ_MESSAGE_HISTORY)
        return json_response(self.world.messages[message_id].payload)

    async def edit_message(self, request: web.Request) -> web.Response:
        _, message_id = self._own_message(request)
        stored = self.world.messages[message_id]
        if stored.payload["author"]["id"] != self.world.application_id:
            raise DiscordError(
                403, CANNOT_EDIT_OTHERS_MESSAGE, "Cannot edit a message authored by another user"
            )
        body, uploads = body_of(request), uploads_of(request)
        check_upload_size([(u.filename, u.data) for u in uploads], self.world.upload_limit)
        check_message_body(body, creating=False)
        self.world.edit_message(stored, body, uploads)
        return json_response(stored.payload)

    async def delete_message(self, request: web.Request) -> web.Response:
        _, message_id = self._own_message(request)
        stored = self.world.messages[message_id]
        if stored.payload["author"]["id"] != self.world.application_id:
            raise DiscordError(403, 50013, "Missing Permissions")
        self.world.delete_message(stored)
        return no_content()
