"""The user's side of Discord: what a person does in the client, sent to the bot as gateway
events. Each action refuses (LookupError, ValueError, TypeError) what the client would not let
a user do, so a test cannot drive the bot with an impossible interaction."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.fakediscord import invoke, reactions
from tests.fakediscord.gateway import Gateway
from tests.fakediscord.records import JSON, FakeInteraction, StoredMessage
from tests.fakediscord.rules import DiscordError
from tests.fakediscord.state import World


class UserActions:
    """Mixed into FakeDiscord."""

    world: World
    gateway: Gateway
    _deadline_timers: list[asyncio.TimerHandle]

    async def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user: JSON | None = None,
        channel_id: str | None = None,
        attachments: dict[str, invoke.AttachmentSpec] | None = None,
    ) -> FakeInteraction:
        """Run `/name` (or "/group sub") with option values as the client would send them."""
        inter = invoke.command_interaction(
            self.world,
            name,
            options or {},
            attachments or {},
            user or self.world.owner,
            channel_id or self.world.channel_id,
        )
        return self._send(inter)

    async def click(
        self, message_id: str, custom_id: str, *, user: JSON | None = None
    ) -> FakeInteraction:
        """Click a button that is on the message."""
        inter = invoke.component_interaction(
            self.world, message_id, custom_id, user or self.world.owner, None
        )
        return self._send(inter)

    async def select(
        self, message_id: str, custom_id: str, values: list[str], *, user: JSON | None = None
    ) -> FakeInteraction:
        inter = invoke.component_interaction(
            self.world, message_id, custom_id, user or self.world.owner, values
        )
        return self._send(inter)

    def _send(self, inter: FakeInteraction) -> FakeInteraction:
        # with no bot connected the interaction is lost, as on Discord (the deadline check reports it)
        self.world.dispatch("INTERACTION_CREATE", inter.payload)
        loop = asyncio.get_running_loop()
        self._deadline_timers.append(
            loop.call_later(self.world.ack_deadline, self._check_ack, inter)
        )
        return inter

    def _check_ack(self, inter: FakeInteraction) -> None:
        if inter.acked_at is None:
            self.world.errors.append(
                {
                    "method": None,
                    "path": None,
                    "status": None,
                    "code": 10062,
                    "message": f"interaction {inter.id} was not acknowledged within {self.world.ack_deadline} s "
                    "(the user sees 'The application did not respond')",
                    "errors": None,
                    "time": time.monotonic(),
                }
            )

    async def submit_modal(
        self, inter: FakeInteraction, values: dict[str, Any], *, user: JSON | None = None
    ) -> FakeInteraction:
        """Fill in the modal the bot answered `inter` with and press Submit: `values` maps a text
        input's custom_id to its text (a string select's to a list of option values); inputs not
        given keep their prefilled value. Dispatches a MODAL_SUBMIT (type 5) interaction."""
        return self._send(invoke.modal_submit_interaction(self.world, inter, values, user))

    async def message_command(
        self, name: str, message_id: str, *, user: JSON | None = None
    ) -> FakeInteraction:
        """Apps → `name` on a message: a registered message (type 3) context menu command."""
        user = user or self.world.owner
        self._visible(message_id, user)
        inter = invoke.message_command_interaction(self.world, name, message_id, user)
        return self._send(inter)

    async def react(self, message_id: str, emoji: str, *, user: JSON | None = None) -> None:
        """`user` adds a reaction ("✉️", or "name:id" for a custom emoji) to a message; the bot
        gets MESSAGE_REACTION_ADD if it asked for the reactions intent."""
        stored = self._visible(message_id, user)
        reactions.add(self.world, stored, reactions.emoji_of(emoji), self._reactor(stored, user))

    async def unreact(self, message_id: str, emoji: str, *, user: JSON | None = None) -> None:
        """`user` takes their reaction away again (MESSAGE_REACTION_REMOVE)."""
        stored = self._visible(message_id, user)
        user_id = self._reactor(stored, user)["id"]
        reactions.remove(self.world, stored, reactions.emoji_of(emoji), user_id)

    def _visible(self, message_id: str, user: JSON | None) -> StoredMessage:
        try:
            stored = self.world.message(message_id)
        except DiscordError:
            raise LookupError(f"there is no message {message_id}") from None
        metadata = stored.payload.get("interaction_metadata") or {}
        if stored.ephemeral and (user or self.world.owner)["id"] != metadata["user"]["id"]:
            raise ValueError("only the user who received an ephemeral message can see it")
        return stored

    def _reactor(self, stored: StoredMessage, user: JSON | None) -> JSON:
        if stored.ephemeral:
            raise ValueError("nobody can react to an ephemeral message")
        dm = self.world.dm_channels.get(stored.payload["channel_id"])
        if dm is None:
            return user or self.world.owner
        recipient: JSON = dm["recipients"][0]
        if user is not None and user["id"] != recipient["id"]:
            raise ValueError("only the DM's recipient sees a DM")
        return recipient
