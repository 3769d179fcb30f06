"""Reactions (https://discord.com/developers/docs/resources/message#create-reaction): users' and
the bot's own, kept on the message as Discord shows them (`reactions`: count, me, emoji) and
dispatched as MESSAGE_REACTION_ADD / _REMOVE to sessions with the reactions intent."""

from __future__ import annotations

from aiohttp import web

from tests.fakediscord import payloads
from tests.fakediscord.http import no_content
from tests.fakediscord.records import JSON, StoredMessage
from tests.fakediscord.rules import UNKNOWN_MESSAGE, DiscordError
from tests.fakediscord.state import World

UNKNOWN_EMOJI = 10014


def emoji_of(text: str) -> JSON:
    """A unicode emoji ("✉️") or a custom one as routes name it ("name:id")."""
    name, _, emoji_id = text.partition(":")
    if emoji_id:
        return {"id": emoji_id, "name": name}
    if not text:
        raise DiscordError(400, UNKNOWN_EMOJI, "Unknown Emoji")
    return {"id": None, "name": text}


def _key(emoji: JSON) -> str:
    return f"{emoji['name']}:{emoji['id']}" if emoji["id"] else emoji["name"]


def _refresh(world: World, stored: StoredMessage) -> None:
    shown = []
    for key, user_ids in stored.reactions.items():
        count = len(user_ids)
        shown.append(
            {
                "count": count,
                "count_details": {"burst": 0, "normal": count},
                "me": world.application_id in user_ids,
                "me_burst": False,
                "emoji": emoji_of(key),
                "burst_colors": [],
            }
        )
    if shown:
        stored.payload["reactions"] = shown
    else:
        stored.payload.pop("reactions", None)


def add(world: World, stored: StoredMessage, emoji: JSON, user: JSON) -> None:
    """`user` reacts; nothing happens if they already reacted with this emoji, as on Discord."""
    users = stored.reactions.setdefault(_key(emoji), [])
    if user["id"] in users:
        return
    users.append(user["id"])
    _refresh(world, stored)
    event: JSON = {
        **_where(stored),
        "user_id": user["id"],
        "emoji": emoji,
        "message_author_id": stored.payload["author"]["id"],
        "burst": False,
        "type": 0,
    }
    if "guild_id" in event:
        event["member"] = world.member(world.users.get(user["id"], user))
    world.dispatch("MESSAGE_REACTION_ADD", event)


def remove(world: World, stored: StoredMessage, emoji: JSON, user_id: str) -> None:
    users = stored.reactions.get(_key(emoji), [])
    if user_id not in users:
        return
    users.remove(user_id)
    if not users:
        del stored.reactions[_key(emoji)]
    _refresh(world, stored)
    event = {**_where(stored), "user_id": user_id, "emoji": emoji, "burst": False, "type": 0}
    world.dispatch("MESSAGE_REACTION_REMOVE", event)


def _where(stored: StoredMessage) -> JSON:
    where = {"message_id": stored.id, "channel_id": stored.payload["channel_id"]}
    if stored.payload.get("guild_id") is not None:
        where["guild_id"] = stored.payload["guild_id"]
    return where


class ReactionApi:
    """PUT / DELETE /channels/{c}/messages/{m}/reactions/{emoji}/@me: the bot's own reaction."""

    def __init__(self, world: World) -> None:
        self.world = world

    def _target(self, request: web.Request) -> tuple[StoredMessage, JSON]:
        channel_id, message_id = request.match_info["channel_id"], request.match_info["message_id"]
        self.world.channel(channel_id)
        stored = self.world.message(message_id, channel_id)
        if stored.ephemeral:
            raise DiscordError(404, UNKNOWN_MESSAGE, "Unknown Message")
        return stored, emoji_of(request.match_info["emoji"])

    async def add_own(self, request: web.Request) -> web.Response:
        stored, emoji = self._target(request)
        channel_id = stored.payload["channel_id"]
        self.world.require_permission(channel_id, payloads.READ_MESSAGE_HISTORY)
        if _key(emoji) not in stored.reactions:  # starting a new reaction takes Add Reactions
            self.world.require_permission(channel_id, payloads.ADD_REACTIONS)
        add(self.world, stored, emoji, self.world.bot_user)
        return no_content()

    async def remove_own(self, request: web.Request) -> web.Response:
        stored, emoji = self._target(request)
        remove(self.world, stored, emoji, self.world.application_id)
        return no_content()
