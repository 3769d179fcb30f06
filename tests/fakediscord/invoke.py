"""What a user does in the Discord client, as INTERACTION_CREATE payloads: run a registered slash
command (options typed by its registered definition, attachments resolved to CDN URLs) or message
context menu command, click a component that is really on a message, or submit a modal the bot
opened. The client refuses what a user could not send."""

from __future__ import annotations

import copy
import secrets
import time
from typing import Any

from tests.fakediscord import modals
from tests.fakediscord.records import JSON, FakeInteraction, Upload
from tests.fakediscord.rules import SELECT_TYPES, iter_components
from tests.fakediscord.state import World

COMMAND, COMPONENT, MODAL_SUBMIT = 2, 3, 5
MESSAGE_COMMAND = 3
SUBCOMMAND, GROUP = 1, 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, NUMBER, ATTACHMENT = 3, 4, 5, 6, 7, 8, 10, 11
AttachmentSpec = tuple[bytes, str, str]  # data, filename, content type
PYTHON_TYPES: dict[int, type | tuple[type, ...]] = {
    STRING: str,
    INTEGER: int,
    BOOLEAN: bool,
    NUMBER: (int, float),
}


def find_command(world: World, name: str, kind: int = 1) -> tuple[JSON, str | None]:
    """A command of this type as the client offers it: guild commands first, then global ones."""
    for scope in (world.guild_id, None):
        for command in world.commands.get(scope, []):
            if command["type"] == kind and command["name"] == name:
                return command, scope
    what = f"/{name}" if kind == 1 else f"the type {kind} command {name!r}"
    raise LookupError(f"{what} is not registered (registered: {_names(world)}); did the bot sync?")


def message_command_interaction(
    world: World, name: str, message_id: str, user: JSON
) -> FakeInteraction:
    """Apps → `name` on a message: the message travels resolved, as the client saw it."""
    command, scope = find_command(world, name, MESSAGE_COMMAND)
    stored = world.message(message_id)
    if stored.ephemeral and stored.payload["interaction_metadata"]["user"]["id"] != user["id"]:
        raise ValueError("only the user who received an ephemeral message can see it")
    channel_id = stored.payload["channel_id"]
    if channel_id in world.dm_channels:
        raise ValueError("the fake runs message commands in the guild only, not in DMs")
    data: JSON = {
        "id": command["id"],
        "name": name,
        "type": MESSAGE_COMMAND,
        "target_id": message_id,
        "resolved": {"messages": {message_id: copy.deepcopy(stored.payload)}},
    }
    if scope is not None:
        data["guild_id"] = scope
    return _interaction(world, COMMAND, data, user, channel_id, None)


def modal_submit_interaction(
    world: World, opened: FakeInteraction, values: dict[str, Any], user: JSON | None
) -> FakeInteraction:
    """The user fills in the modal the bot answered `opened` with and presses Submit."""
    if opened.modal is None:
        raise ValueError(
            f"interaction {opened.id} got no modal (its response: {opened.response_type})"
        )
    opener = opened.payload["member"]["user"]
    if user is not None and user["id"] != opener["id"]:
        raise ValueError("a modal is shown only to the user who opened it")
    if any(world.interactions[i].acked_at is not None for i in opened.submit_ids):
        raise ValueError("the modal was submitted and answered already; it is closed")
    data = modals.submission(opened.modal, values)
    message = None
    if opened.message_id is not None:
        stored = world.messages[opened.message_id]
        message = opened.payload["message"] if stored.deleted else stored.payload
    inter = _interaction(world, MODAL_SUBMIT, data, opener, opened.channel_id, message)
    inter.modal_of = opened.id
    opened.submit_ids.append(inter.id)
    return inter


def command_interaction(
    world: World,
    path: str,
    values: dict[str, Any],
    attachments: dict[str, AttachmentSpec],
    user: JSON,
    channel_id: str,
) -> FakeInteraction:
    root, *subcommands = path.split()
    command, scope = find_command(world, root)
    resolved: JSON = {}
    definitions: list[JSON] = command.get("options") or []
    nesting: list[tuple[str, int]] = []
    for name in subcommands:
        match = next(
            (d for d in definitions if d["name"] == name and d["type"] in (SUBCOMMAND, GROUP)), None
        )
        if match is None:
            raise LookupError(f"/{path}: /{root} has no subcommand {name!r}")
        nesting.append((name, match["type"]))
        definitions = match.get("options") or []
    options = _options(world, path, definitions, values, attachments, channel_id, resolved)
    for channel in resolved.get("channels", {}).values():
        channel["permissions"] = str(world.member_permissions(user["id"]))  # the invoker's
    for name, kind in reversed(nesting):
        options = [{"name": name, "type": kind, "options": options}]
    data: JSON = {"id": command["id"], "name": root, "type": 1, "options": options}
    if resolved:
        data["resolved"] = resolved
    if scope is not None:
        data["guild_id"] = scope
    return _interaction(world, COMMAND, data, user, channel_id, None)


def component_interaction(
    world: World, message_id: str, custom_id: str, user: JSON, values: list[str] | None
) -> FakeInteraction:
    stored = world.message(message_id)
    component = next(
        (c for c in iter_components(stored.payload) if c.get("custom_id") == custom_id), None
    )
    if component is None:
        raise LookupError(f"message {message_id} has no component with custom_id {custom_id!r}")
    if component.get("disabled"):
        raise ValueError(f"the component {custom_id!r} is disabled; a user cannot use it")
    if stored.ephemeral and stored.payload["interaction_metadata"]["user"]["id"] != user["id"]:
        raise ValueError("only the user who received an ephemeral message can see its components")
    data: JSON = {"custom_id": custom_id, "component_type": component["type"]}
    if component["type"] in SELECT_TYPES:
        data["values"] = values or []
    elif values is not None:
        raise ValueError("values are for select menus, not buttons")
    return _interaction(world, COMPONENT, data, user, stored.payload["channel_id"], stored.payload)


def _interaction(
    world: World, kind: int, data: JSON, user: JSON, channel_id: str, message: JSON | None
) -> FakeInteraction:
    channel = world.channel(channel_id)
    member_permissions = world.member_permissions(user["id"])
    payload: JSON = {
        "id": world.ids.next(),
        "application_id": world.application_id,
        "type": kind,
        "data": data,
        "guild_id": world.guild_id,
        "guild": {"id": world.guild_id, "locale": "en-US", "features": []},
        "channel_id": channel_id,
        "channel": {**channel, "permissions": str(member_permissions)},
        "member": {**world.member(user), "permissions": str(member_permissions)},
        "token": "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(96),
        "version": 1,
        "app_permissions": str(world.bot_channel_permissions[channel_id]),
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": world.guild_id},
        "context": 0,
        "attachment_size_limit": world.upload_limit,
    }
    if message is not None:
        payload["message"] = copy.deepcopy(message)  # the message as it was when clicked
    inter = FakeInteraction(
        id=payload["id"],
        token=payload["token"],
        type=kind,
        payload=payload,
        channel_id=channel_id,
        created_at=time.monotonic(),
        store=world,
        message_id=message["id"] if message else None,
    )
    world.interactions[inter.id] = inter
    return inter


def _options(
    world: World,
    path: str,
    definitions: list[JSON],
    values: dict[str, Any],
    attachments: dict[str, AttachmentSpec],
    channel_id: str,
    resolved: JSON,
) -> list[JSON]:
    known = {d["name"]: d for d in definitions}
    for name in [*values, *attachments]:
        if name not in known:
            raise LookupError(f"/{path} has no option {name!r} (options: {sorted(known)})")
    options: list[JSON] = []
    for definition in definitions:
        name, kind = definition["name"], definition["type"]
        if name in attachments:
            if kind != ATTACHMENT:
                raise TypeError(f"/{path} option {name!r} is not an attachment option")
            data, filename, content_type = attachments[name]
            attachment = world.store_blob(
                channel_id, Upload(0, filename, data, content_type), ephemeral=True
            )
            resolved.setdefault("attachments", {})[attachment["id"]] = attachment
            options.append({"name": name, "type": kind, "value": attachment["id"]})
        elif name in values:
            value = _typed(path, definition, values[name], world, resolved)
            options.append({"name": name, "type": kind, "value": value})
        elif definition.get("required"):
            raise ValueError(
                f"/{path} needs the option {name!r}; the client will not send it without"
            )
    return options


def _typed(path: str, definition: JSON, value: Any, world: World, resolved: JSON) -> Any:
    kind, name = definition["type"], definition["name"]
    expected = PYTHON_TYPES.get(kind)
    if expected is not None and (
        not isinstance(value, expected) or (kind != BOOLEAN and isinstance(value, bool))
    ):
        raise TypeError(f"/{path} option {name!r} takes a {expected}, not {value!r}")
    choices = [c["value"] for c in definition.get("choices") or []]
    if choices and value not in choices:
        raise ValueError(f"/{path} option {name!r} must be one of {choices}")
    if kind == STRING and not definition.get("min_length", 0) <= len(value) <= definition.get(
        "max_length", 6000
    ):
        raise ValueError(f"/{path} option {name!r} has a length outside the registered bounds")
    if kind in (INTEGER, NUMBER):
        low, high = definition.get("min_value"), definition.get("max_value")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"/{path} option {name!r} is outside [{low}, {high}]")
    if kind == USER:
        user = value if isinstance(value, dict) else world.users[str(value)]
        resolved.setdefault("users", {})[user["id"]] = user
        member = {k: v for k, v in world.member(user).items() if k != "user"}
        resolved.setdefault("members", {})[user["id"]] = {
            **member,
            "permissions": str(world.member_permissions(user["id"])),
        }
        return user["id"]
    if kind == CHANNEL:
        channel = world.channel(str(value["id"] if isinstance(value, dict) else value))
        resolved.setdefault("channels", {})[channel["id"]] = dict(channel)
        return channel["id"]
    if kind == ROLE:
        role = next(r for r in world.roles if r["id"] == str(value))
        resolved.setdefault("roles", {})[role["id"]] = role
        return role["id"]
    return value


def _names(world: World) -> list[str]:
    return sorted({c["name"] for commands in world.commands.values() for c in commands})
