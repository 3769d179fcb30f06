"""Application command registration (global and per guild) with Discord's validation rules
(https://discord.com/developers/docs/interactions/application-commands)."""

from __future__ import annotations

import re
from typing import Any

from tests.fakediscord.records import JSON
from tests.fakediscord.rules import UNKNOWN_APPLICATION_COMMAND, DiscordError, form_error
from tests.fakediscord.state import World

NAME = re.compile(r"^[-_\w]{1,32}$")
CHAT_INPUT, USER, MESSAGE = 1, 2, 3
MAX_CONTEXT_MENU_COMMANDS = 5  # per type (user, message) and scope
MAX_OPTIONS = 25
MAX_CHOICES = 25
MAX_CHAT_INPUT_COMMANDS = 100
SUBCOMMAND_TYPES = (1, 2)


def overwrite(world: World, guild_id: str | None, bodies: list[JSON]) -> list[JSON]:
    """PUT: the new list replaces the old one; a command keeps its id when its name survives."""
    if not isinstance(bodies, list):
        raise form_error([], "BASE_TYPE_ARRAY", "Must be an array.")
    chat_input = [b for b in bodies if b.get("type", CHAT_INPUT) == CHAT_INPUT]
    if len(chat_input) > MAX_CHAT_INPUT_COMMANDS:
        raise form_error([], "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
    for kind in (USER, MESSAGE):
        if sum(1 for b in bodies if b.get("type") == kind) > MAX_CONTEXT_MENU_COMMANDS:
            raise form_error(
                [], "APPLICATION_COMMAND_TOO_MANY", f"At most 5 commands of type {kind}."
            )
    seen: set[tuple[int, str]] = set()
    for index, body in enumerate(bodies):
        validate(body, [index])
        key = (body.get("type", CHAT_INPUT), body["name"])
        if key in seen:
            raise form_error(
                [index, "name"],
                "APPLICATION_COMMANDS_DUPLICATE_NAME",
                f"Application command names must be unique: {body['name']}",
            )
        seen.add(key)
    old = {(c["type"], c["name"]): c["id"] for c in world.commands.get(guild_id, [])}
    stored = [
        _stored(world, guild_id, body, old.get((body.get("type", 1), body["name"])))
        for body in bodies
    ]
    world.commands[guild_id] = stored
    return stored


def upsert(world: World, guild_id: str | None, body: JSON) -> tuple[int, JSON]:
    """POST: create, or overwrite the command of the same name and type (200 instead of 201)."""
    validate(body, [])
    commands = world.commands.setdefault(guild_id, [])
    for index, command in enumerate(commands):
        if (command["type"], command["name"]) == (body.get("type", CHAT_INPUT), body["name"]):
            commands[index] = _stored(world, guild_id, body, command["id"])
            return 200, commands[index]
    commands.append(_stored(world, guild_id, body, None))
    return 201, commands[-1]


def find(world: World, guild_id: str | None, command_id: str) -> JSON:
    for command in world.commands.get(guild_id, []):
        if command["id"] == command_id:
            return command
    raise DiscordError(404, UNKNOWN_APPLICATION_COMMAND, "Unknown application command")


def edit(world: World, guild_id: str | None, command_id: str, body: JSON) -> JSON:
    command = find(world, guild_id, command_id)
    merged = {**command, **body}
    validate(merged, [])
    command.update(_stored(world, guild_id, merged, command_id))
    return command


def delete(world: World, guild_id: str | None, command_id: str) -> None:
    command = find(world, guild_id, command_id)
    world.commands[guild_id].remove(command)


def validate(body: JSON, path: list[str | int]) -> None:
    """Chat input (1): a lowercase name, a description, options. User (2) and message (3)
    context menu commands: a name of 1-32 characters (spaces and capitals allowed), no
    description, no options."""
    kind = body.get("type", CHAT_INPUT)
    if kind not in (CHAT_INPUT, USER, MESSAGE):
        raise form_error([*path, "type"], "BASE_TYPE_CHOICES", "Value must be one of {1, 2, 3}.")
    _check_name(body.get("name"), [*path, "name"], lowercase=kind == CHAT_INPUT)
    description = body.get("description") or ""
    if kind == CHAT_INPUT and not 1 <= len(description) <= 100:
        raise form_error(
            [*path, "description"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
        )
    if kind != CHAT_INPUT and description:
        raise form_error(
            [*path, "description"],
            "APPLICATION_COMMAND_INVALID_DESCRIPTION",
            "Context menu commands cannot have a description.",
        )
    if kind != CHAT_INPUT and body.get("options"):
        raise form_error(
            [*path, "options"],
            "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
            "Context menu commands cannot have options.",
        )
    _check_options(body.get("options") or [], [*path, "options"])


def _check_options(options: list[JSON], path: list[str | int]) -> None:
    if len(options) > MAX_OPTIONS:
        raise form_error(path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    names: set[str] = set()
    optional_seen = False
    for index, option in enumerate(options):
        where = [*path, index]
        if option.get("type") not in range(1, 12):
            raise form_error([*where, "type"], "BASE_TYPE_CHOICES", "Value must be one of 1..11.")
        _check_name(option.get("name"), [*where, "name"], lowercase=True)
        if option["name"] in names:
            raise form_error(
                [*where, "name"],
                "APPLICATION_COMMAND_OPTION_NAME_ALREADY_EXISTS",
                "Option names must be unique.",
            )
        names.add(option["name"])
        if not 1 <= len(option.get("description") or "") <= 100:
            raise form_error(
                [*where, "description"],
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            )
        if len(option.get("choices") or []) > MAX_CHOICES:
            raise form_error(
                [*where, "choices"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
            )
        if option["type"] in SUBCOMMAND_TYPES:
            _check_options(option.get("options") or [], [*where, "options"])
        elif option.get("required"):
            if optional_seen:
                raise form_error(
                    [*where, "required"],
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            optional_seen = True


def _check_name(name: Any, path: list[str | int], *, lowercase: bool) -> None:
    if not isinstance(name, str) or not (NAME.match(name) if lowercase else 1 <= len(name) <= 32):
        raise form_error(path, "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
    if lowercase and name != name.lower():
        raise form_error(path, "APPLICATION_COMMAND_INVALID_NAME", "Command name must be lowercase")


def _stored(world: World, guild_id: str | None, body: JSON, command_id: str | None) -> JSON:
    stored: JSON = {
        "id": command_id or world.ids.next(),
        "application_id": world.application_id,
        "version": world.ids.next(),
        "type": body.get("type", CHAT_INPUT),
        "name": body["name"],
        "name_localizations": body.get("name_localizations"),
        "description": body.get("description") or "",
        "description_localizations": body.get("description_localizations"),
        "options": body.get("options") or [],
        "default_member_permissions": body.get("default_member_permissions"),
        "nsfw": bool(body.get("nsfw")),
        "contexts": body.get("contexts"),
        "integration_types": body.get("integration_types") or [0],
    }
    if guild_id is not None:
        stored["guild_id"] = guild_id
    else:
        stored["dm_permission"] = body.get("dm_permission", True)
    return stored
