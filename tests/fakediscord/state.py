"""The fake's world: one application, its bot user, one guild with channels, users, messages,
interactions, registered commands and attachment bytes. REST handlers and the gateway both work on it."""

from __future__ import annotations

import mimetypes
import time
from collections.abc import Callable
from urllib.parse import quote

from tests.fakediscord import payloads
from tests.fakediscord.records import JSON, FakeInteraction, StoredMessage, Upload
from tests.fakediscord.rules import (
    MISSING_PERMISSIONS,
    UNKNOWN_CHANNEL,
    UNKNOWN_MESSAGE,
    DiscordError,
)

Dispatch = Callable[[str, JSON], None]

ALL_PERMISSIONS = (1 << 53) - 1
ADMINISTRATOR = 1 << 3


class World:
    """All state of the fake Discord. Ids are strings, as on the wire."""

    def __init__(
        self, token: str, *, upload_limit: int, ack_deadline: float, token_life: float
    ) -> None:
        self.token = token
        self.upload_limit = upload_limit
        self.ack_deadline = ack_deadline
        self.token_life = token_life
        self.ids = payloads.Snowflakes()
        self.cdn_base = ""
        self.gateway_url = ""
        self.dispatch: Dispatch = lambda event, data: None
        self.application_id = self.ids.next()
        self.bot_user = payloads.user(self.application_id, "imagine", bot=True)
        self.owner = payloads.user(self.ids.next(), "owner")
        self.users: dict[str, JSON] = {self.owner["id"]: self.owner}
        self.guild_id = self.ids.next()
        self.bot_role_id = self.ids.next()
        self.roles = [
            payloads.role(self.guild_id, "@everyone", payloads.EVERYONE_PERMISSIONS, 0),
            payloads.role(self.bot_role_id, "imagine", payloads.BOT_PERMISSIONS, 1),
        ]
        self.joined: dict[str, str] = {}
        self.channels: dict[str, JSON] = {}
        self.threads: dict[str, JSON] = {}
        self.dm_channels: dict[str, JSON] = {}  # by channel id (dms.py)
        self.blocked_dms: set[str] = set()  # users who accept no DMs from the bot
        self.member_roles: dict[str, list[str]] = {}
        self.bot_channel_permissions: dict[str, int] = {}
        self.messages: dict[str, StoredMessage] = {}
        self.blobs: dict[str, tuple[bytes, str]] = {}
        self.interactions: dict[str, FakeInteraction] = {}
        self.commands: dict[str | None, list[JSON]] = {}
        self.calls: list[JSON] = []
        self.errors: list[JSON] = []
        self.channel_id: str = self.add_channel("general")["id"]

    # --- guild, users, channels -------------------------------------------------------------

    def add_user(self, name: str, permissions: int | None = None) -> JSON:
        """A guild member; `permissions` come with a role of their own, on top of @everyone's."""
        payload = payloads.user(self.ids.next(), name)
        self.users[payload["id"]] = payload
        if permissions is not None:
            role = payloads.role(self.ids.next(), f"{name}-role", permissions, len(self.roles))
            role["managed"] = False
            self.roles.append(role)
            self.member_roles[payload["id"]] = [role["id"]]
        return payload

    def add_channel(self, name: str, permissions: int | None = None) -> JSON:
        """A text channel; `permissions` is the bot's effective permission set in it."""
        channel_id = self.ids.next()
        effective = payloads.BOT_PERMISSIONS if permissions is None else permissions
        overwrites = []
        if permissions is not None:
            # an overwrite on the bot's member, as a server admin would set it up
            overwrites.append(
                {
                    "id": self.application_id,
                    "type": 1,
                    "allow": str(effective & ~payloads.BOT_PERMISSIONS),
                    "deny": str(payloads.BOT_PERMISSIONS & ~effective),
                }
            )
        channel = payloads.text_channel(
            channel_id, self.guild_id, name, len(self.channels), overwrites
        )
        self.channels[channel_id] = channel
        self.bot_channel_permissions[channel_id] = effective
        return channel

    def add_thread(self, parent_id: str, name: str) -> JSON:
        """A public thread in a text channel; the bot's permissions in it are the channel's, as
        threads have no overwrites of their own."""
        thread_id = self.ids.next()
        thread = payloads.thread(thread_id, self.guild_id, parent_id, self.owner["id"], name)
        self.threads[thread_id] = thread
        self.bot_channel_permissions[thread_id] = self.bot_channel_permissions[parent_id]
        return thread

    def is_thread(self, channel_id: str) -> bool:
        return channel_id in self.threads

    def member(self, user_payload: JSON) -> JSON:
        joined = self.joined.setdefault(user_payload["id"], payloads.iso_now())
        role_ids = [self.bot_role_id] if user_payload["id"] == self.application_id else []
        role_ids = self.member_roles.get(user_payload["id"], role_ids)
        return payloads.member(user_payload, role_ids, joined)

    def member_permissions(self, user_id: str) -> int:
        """Guild permissions: the owner has all; others @everyone's plus their roles'."""
        if user_id == self.owner["id"]:
            return ALL_PERMISSIONS
        bits = payloads.EVERYONE_PERMISSIONS
        for role in self.roles:
            if role["id"] in self.member_roles.get(user_id, []):
                bits |= int(role["permissions"])
        return ALL_PERMISSIONS if bits & ADMINISTRATOR else bits

    def guild(self) -> JSON:
        members = [self.member(u) for u in [self.bot_user, *self.users.values()]]
        return payloads.guild(
            self.guild_id,
            "Fake Guild",
            self.owner["id"],
            roles=self.roles,
            channels=list(self.channels.values()),
            members=members,
            threads=list(self.threads.values()),
        )

    def channel(self, channel_id: str) -> JSON:
        found = (
            self.channels.get(channel_id)
            or self.threads.get(channel_id)
            or self.dm_channels.get(channel_id)
        )
        if found is None:
            raise DiscordError(404, UNKNOWN_CHANNEL, "Unknown Channel")
        return found

    def require_permission(self, channel_id: str, bit: int) -> None:
        if not self.bot_channel_permissions[channel_id] & bit:
            raise DiscordError(403, MISSING_PERMISSIONS, "Missing Permissions")

    def require_send(self, channel_id: str) -> None:
        """Posting needs Send Messages in a channel, Send Messages in Threads in a thread."""
        thread = self.is_thread(channel_id)
        bit = payloads.SEND_MESSAGES_IN_THREADS if thread else payloads.SEND_MESSAGES
        self.require_permission(channel_id, bit)

    # --- messages and attachments -----------------------------------------------------------

    def message(self, message_id: str, channel_id: str | None = None) -> StoredMessage:
        stored = self.messages.get(message_id)
        if (
            stored is None
            or stored.deleted
            or (channel_id is not None and stored.payload["channel_id"] != channel_id)
        ):
            raise DiscordError(404, UNKNOWN_MESSAGE, "Unknown Message")
        return stored

    def create_message(
        self,
        channel_id: str,
        body: JSON,
        uploads: list[Upload],
        *,
        author: JSON,
        message_type: int = 0,
        extra: JSON | None = None,
    ) -> StoredMessage:
        message_id = self.ids.next()
        attachments = self._attachments(channel_id, [], body.get("attachments"), uploads)
        guild_id = None if channel_id in self.dm_channels else self.guild_id
        payload = payloads.message(
            message_id,
            channel_id,
            guild_id,
            author,
            body,
            message_type=message_type,
            attachments=attachments,
        )
        payload.update(extra or {})
        stored = StoredMessage(payload)
        self.messages[message_id] = stored
        if not stored.ephemeral:
            self.channel(channel_id)["last_message_id"] = message_id
            event = {**payload, "member": self.member(author)} if guild_id else payload
            self.dispatch("MESSAGE_CREATE", event)
        return stored

    def edit_message(self, stored: StoredMessage, body: JSON, uploads: list[Upload]) -> None:
        payload = stored.payload
        for key in ("content", "embeds", "components"):
            if key in body:
                payload[key] = (
                    body[key] if body[key] is not None else ([] if key != "content" else "")
                )
        if "attachments" in body or uploads:
            payload["attachments"] = self._attachments(
                payload["channel_id"], payload["attachments"], body.get("attachments"), uploads
            )
        if body.get("flags") is not None:
            # only SUPPRESS_EMBEDS may change; ephemerality is fixed at creation
            payload["flags"] = (payload["flags"] & ~4) | (int(body["flags"]) & 4)
        payload["flags"] &= ~payloads.LOADING
        payload["edited_timestamp"] = payloads.iso_now()
        stored.edits.append({**body, "files": [u.filename for u in uploads]})
        if not stored.ephemeral:
            self.dispatch("MESSAGE_UPDATE", payload)

    def delete_message(self, stored: StoredMessage) -> None:
        stored.deleted = True
        if not stored.ephemeral:
            where = {k: v for k, v in stored.payload.items() if k in ("channel_id", "guild_id")}
            self.dispatch("MESSAGE_DELETE", {"id": stored.id, **where})

    def _attachments(
        self,
        channel_id: str,
        existing: list[JSON],
        wanted: list[JSON] | None,
        uploads: list[Upload],
    ) -> list[JSON]:
        """Discord v10 semantics: `attachments` lists what to keep by id and describes new files by
        their `files[n]` index; files it does not mention are still attached."""
        by_id = {a["id"]: a for a in existing}
        by_index = {u.index: u for u in uploads}
        result: list[JSON] = [] if wanted is not None else list(existing)
        used: set[int] = set()
        for entry in wanted or []:
            key = str(entry.get("id"))
            if key in by_id:
                result.append(by_id[key])
            elif key.isdigit() and int(key) in by_index and int(key) not in used:
                used.add(int(key))
                result.append(
                    self.store_blob(
                        channel_id,
                        by_index[int(key)],
                        filename=entry.get("filename"),
                        description=entry.get("description"),
                    )
                )
        for upload in uploads:
            if upload.index not in used:
                result.append(self.store_blob(channel_id, upload))
        return result

    def store_blob(
        self,
        channel_id: str,
        upload: Upload,
        *,
        filename: str | None = None,
        description: str | None = None,
        ephemeral: bool = False,
    ) -> JSON:
        attachment_id = self.ids.next()
        name = (filename or upload.filename).replace(" ", "_")
        content_type = upload.content_type
        if content_type in ("", "application/octet-stream"):
            # discord.py sends every file as octet-stream; Discord sniffs the type from the name
            content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        path = f"/attachments/{channel_id}/{attachment_id}/{quote(name)}"
        self.blobs[path] = (upload.data, content_type)
        return payloads.attachment(
            attachment_id,
            name,
            upload.data,
            content_type,
            self.cdn_base + path,
            ephemeral=ephemeral,
            description=description,
        )

    def record_error(self, method: str, path: str, error: DiscordError) -> None:
        self.errors.append(
            {
                "method": method,
                "path": path,
                "status": error.status,
                "code": error.code,
                "message": error.message,
                "errors": error.errors,
                "time": time.monotonic(),
            }
        )
