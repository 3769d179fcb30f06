"""Which gateway intent an event needs (https://discord.com/developers/docs/events/gateway#gateway-intents):
a session that did not ask for it never gets the event. Events not listed here are not filtered."""

from __future__ import annotations

from tests.fakediscord.records import JSON

GUILD_MESSAGES, GUILD_MESSAGE_REACTIONS = 1 << 9, 1 << 10
DIRECT_MESSAGES, DIRECT_MESSAGE_REACTIONS = 1 << 12, 1 << 13
MESSAGE_EVENTS = frozenset({"MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE"})
REACTION_EVENTS = frozenset(
    {
        "MESSAGE_REACTION_ADD",
        "MESSAGE_REACTION_REMOVE",
        "MESSAGE_REACTION_REMOVE_ALL",
        "MESSAGE_REACTION_REMOVE_EMOJI",
    }
)


def required_intent(event: str, data: JSON) -> int:
    """The intent bit an event needs; 0 for events every session gets."""
    in_guild = data.get("guild_id") is not None
    if event in MESSAGE_EVENTS:
        return GUILD_MESSAGES if in_guild else DIRECT_MESSAGES
    if event in REACTION_EVENTS:
        return GUILD_MESSAGE_REACTIONS if in_guild else DIRECT_MESSAGE_REACTIONS
    return 0
