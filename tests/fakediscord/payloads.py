"""Builders for Discord's JSON objects (users, roles, members, channels, guilds, messages).

Field sets follow the API v10 object docs; discord.py 2.7 reads several keys without defaults
(guild `channels`, `threads`, `stage_instances`, ... and message `attachments`, `embeds`, ...), so
each builder fills every field the real gateway sends.
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime
from typing import Any

JSON = dict[str, Any]

DISCORD_EPOCH_MS = 1_420_070_400_000

# Permission bits (https://discord.com/developers/docs/topics/permissions)
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
USE_EXTERNAL_EMOJIS = 1 << 18
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38

EVERYONE_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | ADD_REACTIONS
    | USE_EXTERNAL_EMOJIS
    | USE_APPLICATION_COMMANDS
    | SEND_MESSAGES_IN_THREADS
)
BOT_PERMISSIONS = EVERYONE_PERMISSIONS

# Message flags
EPHEMERAL = 1 << 6
LOADING = 1 << 7


class Snowflakes:
    """Monotonic snowflakes with real timestamps, so ids sort by creation like Discord's."""

    def __init__(self) -> None:
        self._counter = itertools.count()
        self._last = 0

    def next(self) -> str:
        stamp = int(time.time() * 1000) - DISCORD_EPOCH_MS
        value = max((stamp << 22) | (next(self._counter) & 0xFFF), self._last + 1)
        self._last = value
        return str(value)


def iso_now() -> str:
    return datetime.now(UTC).isoformat()


def user(user_id: str, name: str, *, bot: bool = False) -> JSON:
    return {
        "id": user_id,
        "username": name,
        "global_name": None if bot else name.title(),
        "discriminator": "0",
        "avatar": None,
        "bot": bot,
        "system": False,
        "public_flags": 0,
        "flags": 0,
        "banner": None,
        "accent_color": None,
        "avatar_decoration_data": None,
        "primary_guild": None,
    }


def role(role_id: str, name: str, permissions: int, position: int) -> JSON:
    return {
        "id": role_id,
        "name": name,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": position,
        "permissions": str(permissions),
        "managed": position > 0,
        "mentionable": False,
        "flags": 0,
    }


def member(user_payload: JSON, role_ids: list[str], joined_at: str) -> JSON:
    return {
        "user": user_payload,
        "nick": None,
        "avatar": None,
        "banner": None,
        "roles": role_ids,
        "joined_at": joined_at,
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "communication_disabled_until": None,
    }


def text_channel(
    channel_id: str, guild_id: str, name: str, position: int, overwrites: list[JSON]
) -> JSON:
    return {
        "id": channel_id,
        "type": 0,
        "guild_id": guild_id,
        "name": name,
        "position": position,
        "permission_overwrites": overwrites,
        "nsfw": False,
        "topic": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "parent_id": None,
        "flags": 0,
    }


def thread(thread_id: str, guild_id: str, parent_id: str, owner_id: str, name: str) -> JSON:
    """A public thread (type 11) as the gateway and the API send it."""
    now = iso_now()
    metadata = {
        "archived": False,
        "auto_archive_duration": 1440,
        "archive_timestamp": now,
        "locked": False,
        "create_timestamp": now,
    }
    return {
        "id": thread_id,
        "type": 11,
        "guild_id": guild_id,
        "parent_id": parent_id,
        "owner_id": owner_id,
        "name": name,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "message_count": 0,
        "member_count": 1,
        "total_message_sent": 0,
        "flags": 0,
        "applied_tags": [],
        "thread_metadata": metadata,
    }


def guild(
    guild_id: str,
    name: str,
    owner_id: str,
    *,
    roles: list[JSON],
    channels: list[JSON],
    members: list[JSON],
    threads: list[JSON] | None = None,
) -> JSON:
    return {
        "id": guild_id,
        "name": name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": owner_id,
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "premium_progress_bar_enabled": False,
        "preferred_locale": "en-US",
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "safety_alerts_channel_id": None,
        "vanity_url_code": None,
        "application_id": None,
        "max_members": 500000,
        "max_video_channel_users": 25,
        "max_stage_video_channel_users": 50,
        "widget_enabled": False,
        "features": [],
        "emojis": [],
        "stickers": [],
        "roles": roles,
        "joined_at": iso_now(),
        "large": False,
        "unavailable": False,
        "lazy": True,
        "member_count": len(members),
        "members": members,
        "channels": channels,
        "threads": threads or [],
        "presences": [],
        "voice_states": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
        "incidents_data": None,
    }


def message(
    message_id: str,
    channel_id: str,
    guild_id: str | None,
    author: JSON,
    body: JSON,
    *,
    message_type: int = 0,
    attachments: list[JSON] | None = None,
) -> JSON:
    """A message object from a create body (content, components, embeds, flags, ...)."""
    payload: JSON = {
        "id": message_id,
        "channel_id": channel_id,
        "author": author,
        "content": body.get("content") or "",
        "timestamp": iso_now(),
        "edited_timestamp": None,
        "tts": bool(body.get("tts")),
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": attachments or [],
        "embeds": body.get("embeds") or [],
        "pinned": False,
        "type": message_type,
        "flags": int(body.get("flags") or 0),
        "components": body.get("components") or [],
    }
    if guild_id is not None:
        payload["guild_id"] = guild_id
    if body.get("nonce") is not None:
        payload["nonce"] = body["nonce"]
    return payload


def attachment(
    attachment_id: str,
    filename: str,
    data: bytes,
    content_type: str,
    url: str,
    *,
    ephemeral: bool = False,
    description: str | None = None,
) -> JSON:
    payload: JSON = {
        "id": attachment_id,
        "filename": filename,
        "size": len(data),
        "url": url,
        "proxy_url": url,
        "content_type": content_type,
        "ephemeral": ephemeral,
    }
    if description:
        payload["description"] = description
    size = _image_size(data)
    if size is not None:
        payload["width"], payload["height"] = size
    return payload


def _image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height, as Discord reports them for images (Pillow only reads the header)."""
    from io import BytesIO

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None
