"""Direct messages (https://discord.com/developers/docs/resources/user#create-dm): the bot opens a
DM channel with a user (one per user, reused) and posts there; no guild permissions apply, but a
user who closed their DMs makes every post fail with 403 50007."""

from __future__ import annotations

from tests.fakediscord import payloads
from tests.fakediscord.records import JSON
from tests.fakediscord.rules import DiscordError
from tests.fakediscord.state import World

DM = 1
CANNOT_MESSAGE_USER, INVALID_RECIPIENTS = 50007, 50033
# what a bot may do in a DM: see, post, embed, attach, read history, react
DM_PERMISSIONS = (
    payloads.VIEW_CHANNEL
    | payloads.SEND_MESSAGES
    | payloads.EMBED_LINKS
    | payloads.ATTACH_FILES
    | payloads.READ_MESSAGE_HISTORY
    | payloads.ADD_REACTIONS
    | payloads.USE_EXTERNAL_EMOJIS
)


def open_dm(world: World, user_id: str) -> JSON:
    """The DM channel with this user, made on first use."""
    existing = dm_channel_id(world, user_id)
    if existing is not None:
        return world.dm_channels[existing]
    user = world.users.get(user_id)
    if user is None:
        raise DiscordError(400, INVALID_RECIPIENTS, "Invalid Recipient(s)")
    channel: JSON = {
        "id": world.ids.next(),
        "type": DM,
        "last_message_id": None,
        "flags": 0,
        "recipients": [user],
    }
    world.dm_channels[channel["id"]] = channel
    world.bot_channel_permissions[channel["id"]] = DM_PERMISSIONS
    return channel


def require_open(world: World, channel_id: str) -> None:
    """Posting to a user who accepts no DMs from the bot (closed DMs, blocked the bot)."""
    channel = world.dm_channels.get(channel_id)
    if channel is not None and channel["recipients"][0]["id"] in world.blocked_dms:
        raise DiscordError(403, CANNOT_MESSAGE_USER, "Cannot send messages to this user")


def dm_channel_id(world: World, user_id: str) -> str | None:
    return next(
        (c["id"] for c in world.dm_channels.values() if c["recipients"][0]["id"] == user_id), None
    )
