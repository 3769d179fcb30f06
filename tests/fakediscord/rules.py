"""Discord's documented limits and the error bodies Discord answers with when they are broken.

The fake refuses what Discord refuses, so a bot that passes here does not fail on the real service.
Error shapes follow https://discord.com/developers/docs/reference#error-messages: a JSON code, a
message and, for form errors (50035), a tree of `_errors` mirroring the request body.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

JSON = dict[str, Any]

MAX_CONTENT = 2000
MAX_ROWS = 5
MAX_ROW_ITEMS = 5
MAX_CUSTOM_ID = 100
MAX_LABEL = 80
MAX_EMBEDS = 10
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # 10 MiB per request since January 2025

# Discord error codes used by the fake (https://discord.com/developers/docs/topics/opcodes-and-status-codes)
UNKNOWN_CHANNEL = 10003
UNKNOWN_MESSAGE = 10008
UNKNOWN_WEBHOOK = 10015
UNKNOWN_APPLICATION_COMMAND = 10063
UNKNOWN_INTERACTION = 10062
CANNOT_EDIT_OTHERS_MESSAGE = 50005
EMPTY_MESSAGE = 50006
INVALID_WEBHOOK_TOKEN = 50027
INVALID_FORM_BODY = 50035
MISSING_ACCESS = 50001
MISSING_PERMISSIONS = 50013
ALREADY_ACKNOWLEDGED = 40060
ENTITY_TOO_LARGE = 40005

BUTTON = 2
SELECT_TYPES = frozenset({3, 5, 6, 7, 8})
LINK_STYLE = 5
PREMIUM_STYLE = 6
COMPONENTS_V2_FLAG = 1 << 15


class DiscordError(Exception):
    """An HTTP error as Discord would send it; the REST layer turns it into the response."""

    def __init__(
        self, status: int, code: int, message: str, errors: JSON | None = None, rule: bool = True
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        # rule=False marks errors that are not the client's fault (injected failures)
        self.rule = rule

    def body(self) -> JSON:
        body: JSON = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def form_error(path: Sequence[str | int], error_code: str, message: str) -> DiscordError:
    """A 50035 Invalid Form Body whose `errors` tree points at `path` in the request body."""
    leaf: JSON = {"_errors": [{"code": error_code, "message": message}]}
    for key in reversed(path):
        leaf = {str(key): leaf}
    return DiscordError(400, INVALID_FORM_BODY, "Invalid Form Body", leaf)


def _too_long(path: Sequence[str | int], limit: int) -> DiscordError:
    return form_error(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def check_upload_size(files: Sequence[tuple[str, bytes]], limit: int) -> None:
    total = sum(len(data) for _, data in files)
    if total > limit:
        raise DiscordError(413, ENTITY_TOO_LARGE, "Request entity too large")


def check_message_body(
    body: JSON, *, prefix: Sequence[str | int] = (), creating: bool, has_files: bool = False
) -> None:
    """Validate content, embeds and components of a message create/edit body."""
    content = body.get("content")
    if content is not None:
        if not isinstance(content, str):
            raise form_error([*prefix, "content"], "BASE_TYPE_STRING", "Must be a string.")
        if len(content) > MAX_CONTENT:
            raise _too_long([*prefix, "content"], MAX_CONTENT)
    embeds = body.get("embeds") or []
    if len(embeds) > MAX_EMBEDS:
        raise _too_long([*prefix, "embeds"], MAX_EMBEDS)
    components = body.get("components")
    if components is not None and not int(body.get("flags") or 0) & COMPONENTS_V2_FLAG:
        check_action_rows(components, [*prefix, "components"])
    if creating and not (
        content
        or embeds
        or components
        or has_files
        or body.get("attachments")
        or body.get("sticker_ids")
        or body.get("poll")
    ):
        raise DiscordError(400, EMPTY_MESSAGE, "Cannot send an empty message")


def check_action_rows(rows: list[JSON], path: list[str | int]) -> None:
    """Classic components: ≤ 5 action rows of ≤ 5 buttons or one select, unique custom_ids."""
    if len(rows) > MAX_ROWS:
        raise _too_long(path, MAX_ROWS)
    seen: set[str] = set()
    for r, row in enumerate(rows):
        if row.get("type") != 1:
            raise form_error(
                [*path, r, "type"],
                "UNION_TYPE_CHOICES",
                'Value of field "type" must be one of (1,).',
            )
        items = row.get("components") or []
        if not items:
            raise form_error(
                [*path, r, "components"], "BASE_TYPE_MIN_LENGTH", "Must be 1 or more in length."
            )
        if len(items) > MAX_ROW_ITEMS:
            raise _too_long([*path, r, "components"], MAX_ROW_ITEMS)
        for i, item in enumerate(items):
            where: list[str | int] = [*path, r, "components", i]
            if item.get("type") in SELECT_TYPES and len(items) > 1:
                raise form_error(
                    where,
                    "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                    "The specified component exceeds the maximum width",
                )
            _check_item(item, where, seen)


def _check_item(item: JSON, where: list[str | int], seen: set[str]) -> None:
    kind = item.get("type")
    if kind != BUTTON and kind not in SELECT_TYPES:
        raise form_error(
            [*where, "type"],
            "UNION_TYPE_CHOICES",
            'Value of field "type" must be one of (2, 3, 5, 6, 7, 8).',
        )
    if kind == BUTTON:
        style = item.get("style")
        if style not in range(1, 7):
            raise form_error(
                [*where, "style"], "BASE_TYPE_CHOICES", "Value must be one of {1, 2, 3, 4, 5, 6}."
            )
        if len(item.get("label") or "") > MAX_LABEL:
            raise _too_long([*where, "label"], MAX_LABEL)
        if style == LINK_STYLE:
            if not item.get("url") or "custom_id" in item:
                raise form_error(
                    where,
                    "BUTTON_COMPONENT_INVALID_URL",
                    "A link button needs a url and no custom_id.",
                )
            return
        if style == PREMIUM_STYLE:
            return
    custom_id = item.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise form_error([*where, "custom_id"], "BASE_TYPE_REQUIRED", "This field is required")
    if len(custom_id) > MAX_CUSTOM_ID:
        raise _too_long([*where, "custom_id"], MAX_CUSTOM_ID)
    if custom_id in seen:
        raise form_error(
            [*where, "custom_id"],
            "COMPONENT_CUSTOM_ID_DUPLICATED",
            "Component custom id cannot be duplicated",
        )
    seen.add(custom_id)


def iter_components(message: JSON) -> list[JSON]:
    """Every interactive component on a message, however deeply nested (rows, sections, containers)."""
    found: list[JSON] = []
    stack = list(reversed(message.get("components") or []))
    while stack:
        component = stack.pop()
        if component.get("type") == BUTTON or component.get("type") in SELECT_TYPES:
            found.append(component)
        children = [
            *(component.get("components") or []),
            *filter(None, [component.get("accessory")]),
        ]
        stack.extend(reversed(children))
    return found
