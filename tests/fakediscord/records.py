"""Records of what happened on the fake: uploaded files, stored messages, interactions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.fakediscord import payloads

if TYPE_CHECKING:
    from tests.fakediscord.state import World

JSON = dict[str, Any]


@dataclass(frozen=True)
class Upload:
    """One `files[n]` part of a multipart request."""

    index: int
    filename: str
    data: bytes
    content_type: str


@dataclass
class StoredMessage:
    payload: JSON
    edits: list[JSON] = field(default_factory=list)  # every edit body, in order
    deleted: bool = False
    reactions: dict[str, list[str]] = field(default_factory=dict)  # emoji key -> user ids

    @property
    def id(self) -> str:
        return str(self.payload["id"])

    @property
    def ephemeral(self) -> bool:
        return bool(int(self.payload["flags"]) & payloads.EPHEMERAL)

    def view(self) -> JSON:
        """What tests see: the message as Discord stores it, plus its edit history."""
        return {**self.payload, "edits": list(self.edits), "deleted": self.deleted}


@dataclass
class FakeInteraction:
    """One interaction the fake sent, and what the bot did with it."""

    id: str
    token: str
    type: int  # 2 application command, 3 component, 5 modal submit
    payload: JSON
    channel_id: str
    created_at: float  # time.monotonic()
    store: World = field(repr=False)
    message_id: str | None = None  # the message a component lives on
    acked_at: float | None = None  # time.monotonic() of the first accepted callback
    response_type: int | None = None
    ephemeral: bool = False
    original_id: str | None = None
    followup_ids: list[str] = field(default_factory=list)
    modal: JSON | None = None  # the modal the bot answered with (callback 9), ids filled in
    modal_of: str | None = None  # for a modal submit: the interaction that opened the modal
    submit_ids: list[str] = field(default_factory=list)  # modal submits of this one's modal

    @property
    def ack_delay(self) -> float | None:
        return None if self.acked_at is None else self.acked_at - self.created_at

    @property
    def original(self) -> JSON | None:
        if self.original_id is None:
            return None
        return self.store.messages[self.original_id].view()

    @property
    def followups(self) -> list[JSON]:
        return [self.store.messages[mid].view() for mid in self.followup_ids]
