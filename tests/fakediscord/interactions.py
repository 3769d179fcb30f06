"""Interaction responses: the callback endpoint and the interaction-token webhook endpoints.

Rules enforced (https://discord.com/developers/docs/interactions/receiving-and-responding):
the first callback within the ack deadline (else 10062), exactly one callback (40060), the token
usable only after the callback and for its lifetime (50027), callback types allowed per
interaction type, message limits on every body.
"""

from __future__ import annotations

import time

from tests.fakediscord import modals, payloads
from tests.fakediscord.records import JSON, FakeInteraction, StoredMessage, Upload
from tests.fakediscord.rules import (
    ALREADY_ACKNOWLEDGED,
    INVALID_WEBHOOK_TOKEN,
    UNKNOWN_INTERACTION,
    UNKNOWN_MESSAGE,
    UNKNOWN_WEBHOOK,
    DiscordError,
    check_message_body,
    check_upload_size,
    form_error,
)
from tests.fakediscord.state import World

COMMAND, COMPONENT, MODAL_SUBMIT = 2, 3, 5
MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE, MODAL = 4, 5, 6, 7, 9
ALLOWED_CALLBACKS = {
    COMMAND: (MESSAGE, DEFERRED_MESSAGE, MODAL),
    COMPONENT: (MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE, MODAL),
    # a modal submit never opens another modal; it updates a message only if one is behind it
    MODAL_SUBMIT: (MESSAGE, DEFERRED_MESSAGE),
}
MESSAGE_UPDATES = (DEFERRED_UPDATE, UPDATE)
CONTEXT_MENU_COMMAND, CHAT_INPUT_COMMAND = 23, 20


def respond(
    world: World, interaction_id: str, token: str, body: JSON, uploads: list[Upload]
) -> JSON:
    """POST /interactions/{id}/{token}/callback?with_response=1 → an interaction callback response."""
    now = time.monotonic()
    inter = world.interactions.get(interaction_id)
    if inter is None:
        raise DiscordError(404, UNKNOWN_INTERACTION, "Unknown interaction")
    if inter.token != token:
        raise DiscordError(401, INVALID_WEBHOOK_TOKEN, "Invalid Webhook Token")
    if inter.acked_at is not None:
        raise DiscordError(400, ALREADY_ACKNOWLEDGED, "Interaction has already been acknowledged.")
    if now - inter.created_at > world.ack_deadline:
        raise DiscordError(404, UNKNOWN_INTERACTION, "Unknown interaction")
    kind = body.get("type")
    allowed = ALLOWED_CALLBACKS[inter.type]
    if inter.type == MODAL_SUBMIT and inter.message_id is not None:
        allowed = (*allowed, *MESSAGE_UPDATES)
    if kind not in allowed:
        raise form_error(["type"], "BASE_TYPE_CHOICES", f"Value must be one of {set(allowed)}.")
    data = body.get("data") or {}
    message: StoredMessage | None = None
    if kind == MESSAGE:
        _check(world, data, uploads, ["data"], creating=True)
        message = _create(world, inter, data, uploads)
        inter.original_id = message.id
    elif kind == DEFERRED_MESSAGE:
        flags = payloads.LOADING | (int(data.get("flags") or 0) & payloads.EPHEMERAL)
        message = _create(world, inter, {"content": "", "flags": flags}, [])
        inter.original_id = message.id
    elif kind in (DEFERRED_UPDATE, UPDATE):
        assert inter.message_id is not None
        inter.original_id = inter.message_id
        if kind == UPDATE:
            _check(world, data, uploads, ["data"], creating=False)
            message = world.message(inter.message_id)
            world.edit_message(message, data, uploads)
    else:
        inter.modal = modals.check_modal(data)
    inter.acked_at = now
    inter.response_type = kind
    inter.ephemeral = message is not None and message.ephemeral
    summary: JSON = {
        "id": inter.id,
        "type": inter.type,
        "response_message_loading": kind == DEFERRED_MESSAGE,
        "response_message_ephemeral": inter.ephemeral,
    }
    if message is not None:
        summary["response_message_id"] = message.id
    resource: JSON = {"type": kind}
    if kind in (MESSAGE, UPDATE) and message is not None:
        resource["message"] = message.payload
    return {"interaction": summary, "resource": resource}


def webhook_interaction(world: World, application_id: str, token: str) -> FakeInteraction:
    """The interaction behind an interaction-token webhook URL, if the token may be used now."""
    inter = next((i for i in world.interactions.values() if i.token == token), None)
    if application_id != world.application_id:
        raise DiscordError(404, UNKNOWN_WEBHOOK, "Unknown Webhook")
    if inter is None or time.monotonic() - inter.created_at > world.token_life:
        raise DiscordError(401, INVALID_WEBHOOK_TOKEN, "Invalid Webhook Token")
    if inter.acked_at is None:
        # the token only becomes a webhook once the interaction has been answered
        raise DiscordError(404, UNKNOWN_WEBHOOK, "Unknown Webhook")
    return inter


def followup(
    world: World, inter: FakeInteraction, body: JSON, uploads: list[Upload]
) -> StoredMessage:
    """POST /webhooks/{app}/{token}: the first followup after a deferred reply fills the loading
    message (its ephemerality comes from the defer); later ones are new messages."""
    _check(world, body, uploads, [], creating=True)
    if inter.original_id is not None and inter.response_type == DEFERRED_MESSAGE:
        original = world.messages[inter.original_id]
        if original.payload["flags"] & payloads.LOADING and not original.deleted:
            world.edit_message(original, {k: v for k, v in body.items() if k != "flags"}, uploads)
            return original
    message = _create(world, inter, body, uploads)
    inter.followup_ids.append(message.id)
    return message


def webhook_message(world: World, inter: FakeInteraction, message_id: str) -> StoredMessage:
    """`@original` or a followup id; a token reaches no other message."""
    target = inter.original_id if message_id == "@original" else message_id
    if target is None or (target != inter.original_id and target not in inter.followup_ids):
        raise DiscordError(404, UNKNOWN_MESSAGE, "Unknown Message")
    return world.message(target)


def edit_webhook_message(
    world: World, message: StoredMessage, body: JSON, uploads: list[Upload]
) -> None:
    _check(world, body, uploads, [], creating=False)
    world.edit_message(message, body, uploads)


def _check(
    world: World, body: JSON, uploads: list[Upload], prefix: list[str | int], *, creating: bool
) -> None:
    check_upload_size([(u.filename, u.data) for u in uploads], world.upload_limit)
    check_message_body(body, prefix=prefix, creating=creating, has_files=bool(uploads))


def _create(
    world: World, inter: FakeInteraction, body: JSON, uploads: list[Upload]
) -> StoredMessage:
    extra = {
        "webhook_id": world.application_id,
        "application_id": world.application_id,
        "interaction_metadata": _metadata(world, inter),
    }
    message_type = 0  # DEFAULT
    if inter.type == COMMAND:
        command_type = inter.payload["data"].get("type", 1)
        message_type = CHAT_INPUT_COMMAND if command_type == 1 else CONTEXT_MENU_COMMAND
    return world.create_message(
        inter.channel_id,
        body,
        uploads,
        author=world.bot_user,
        message_type=message_type,
        extra=extra,
    )


def _metadata(world: World, inter: FakeInteraction) -> JSON:
    """A message's `interaction_metadata`: who did what; a modal submit nests the interaction
    that opened the modal as `triggering_interaction_metadata`."""
    metadata: JSON = {
        "id": inter.id,
        "type": inter.type,
        "user": inter.payload["member"]["user"],
        "authorizing_integration_owners": inter.payload["authorizing_integration_owners"],
    }
    data = inter.payload["data"]
    if inter.type == COMMAND:
        metadata.update(name=data["name"], command_type=data.get("type", 1))
        if data.get("type") == 3:
            metadata["target_message_id"] = data["target_id"]
    elif inter.type == COMPONENT:
        metadata["interacted_message_id"] = inter.message_id
    elif inter.modal_of is not None:
        metadata["triggering_interaction_metadata"] = _metadata(
            world, world.interactions[inter.modal_of]
        )
    if inter.original_id is not None:
        metadata["original_response_message_id"] = inter.original_id
    return metadata
