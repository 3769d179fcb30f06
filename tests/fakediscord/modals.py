"""Modals (https://discord.com/developers/docs/components/using-modal-components): the MODAL (9)
callback checked as Discord checks it, and the MODAL_SUBMIT (5) the client sends when the user
fills one in. A modal holds 1-5 top-level components: an action row with one text input (the
older form), a Label (18) around a text input or a string select, or a text display (10)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from tests.fakediscord.records import JSON
from tests.fakediscord.rules import form_error

ACTION_ROW, STRING_SELECT, TEXT_INPUT, TEXT_DISPLAY, LABEL = 1, 3, 4, 10, 18
MAX_TITLE, MAX_LABEL, MAX_DESCRIPTION, MAX_TEXT, MAX_PLACEHOLDER = 45, 45, 100, 4000, 100
Path = list[str | int]


def check_modal(data: JSON) -> JSON:
    """The modal of a type 9 callback as Discord keeps it (ids filled in); 50035 if invalid."""
    _length(data.get("custom_id"), ["data", "custom_id"], 1, 100)
    _length(data.get("title"), ["data", "title"], 1, MAX_TITLE)
    components = data.get("components")
    if not isinstance(components, list) or not 1 <= len(components) <= 5:
        raise form_error(
            ["data", "components"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length."
        )
    seen: set[str] = set()
    for index, component in enumerate(components):
        _check_top(component, ["data", "components", index], seen)
    modal = {k: copy.deepcopy(data[k]) for k in ("custom_id", "title", "components")}
    _assign_ids(modal["components"])
    return modal


def _check_top(component: JSON, where: Path, seen: set[str]) -> None:
    kind = component.get("type")
    if kind == ACTION_ROW:
        items = component.get("components") or []
        if len(items) != 1 or items[0].get("type") != TEXT_INPUT:
            raise form_error(
                [*where, "components"],
                "MODAL_ACTION_ROW_INVALID",
                "An action row in a modal holds exactly one text input.",
            )
        _check_text_input(items[0], [*where, "components", 0], seen, in_label=False)
    elif kind == LABEL:
        _length(component.get("label"), [*where, "label"], 1, MAX_LABEL)
        if component.get("description") is not None:
            _length(component["description"], [*where, "description"], 0, MAX_DESCRIPTION)
        inner = component.get("component") or {}
        if inner.get("type") == TEXT_INPUT:
            _check_text_input(inner, [*where, "component"], seen, in_label=True)
        elif inner.get("type") == STRING_SELECT:
            _check_select(inner, [*where, "component"], seen)
        else:
            raise form_error(
                [*where, "component", "type"],
                "UNION_TYPE_CHOICES",
                'Value of field "type" must be one of (3, 4).',
            )
    elif kind == TEXT_DISPLAY:
        _length(component.get("content"), [*where, "content"], 1, MAX_TEXT)
    else:
        raise form_error(
            [*where, "type"],
            "UNION_TYPE_CHOICES",
            'Value of field "type" must be one of (1, 10, 18).',
        )


def _check_text_input(item: JSON, where: Path, seen: set[str], *, in_label: bool) -> None:
    _custom_id(item, where, seen)
    if item.get("style") not in (1, 2):
        raise form_error([*where, "style"], "BASE_TYPE_CHOICES", "Value must be one of {1, 2}.")
    if in_label and item.get("label"):
        raise form_error(
            [*where, "label"],
            "TEXT_INPUT_LABEL_IN_LABEL",
            "A text input inside a label component cannot have its own label.",
        )
    if not in_label:
        _length(item.get("label"), [*where, "label"], 1, MAX_LABEL)
    low, high = item.get("min_length"), item.get("max_length")
    for key, value, least in (("min_length", low, 0), ("max_length", high, 1)):
        if value is not None and not (isinstance(value, int) and least <= value <= MAX_TEXT):
            raise form_error(
                [*where, key], "NUMBER_TYPE_MAX", f"Must be between {least} and {MAX_TEXT}."
            )
    if low is not None and high is not None and low > high:
        raise form_error(
            [*where, "min_length"], "NUMBER_TYPE_MAX", "min_length must not exceed max_length."
        )
    if item.get("value") is not None:
        _length(item["value"], [*where, "value"], 0, high if high is not None else MAX_TEXT)
    if item.get("placeholder") is not None:
        _length(item["placeholder"], [*where, "placeholder"], 0, MAX_PLACEHOLDER)


def _check_select(item: JSON, where: Path, seen: set[str]) -> None:
    _custom_id(item, where, seen)
    options = item.get("options") or []
    if not 1 <= len(options) <= 25:
        raise form_error(
            [*where, "options"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 25 in length."
        )
    for i, option in enumerate(options):
        _length(option.get("label"), [*where, "options", i, "label"], 1, 100)
        _length(option.get("value"), [*where, "options", i, "value"], 1, 100)
    low, high = item.get("min_values", 1), item.get("max_values", 1)
    if not 0 <= low <= high <= len(options):
        raise form_error(
            [*where, "max_values"], "NUMBER_TYPE_MAX", "min_values <= max_values <= options."
        )


def _custom_id(item: JSON, where: Path, seen: set[str]) -> None:
    custom_id = item.get("custom_id")
    _length(custom_id, [*where, "custom_id"], 1, 100)
    assert isinstance(custom_id, str)
    if custom_id in seen:
        raise form_error(
            [*where, "custom_id"],
            "COMPONENT_CUSTOM_ID_DUPLICATED",
            "Component custom id cannot be duplicated",
        )
    seen.add(custom_id)


def _length(value: Any, where: Path, low: int, high: int) -> None:
    if not isinstance(value, str):
        if low == 0 and value is None:
            return
        raise form_error(where, "BASE_TYPE_REQUIRED", "This field is required")
    if not low <= len(value) <= high:
        raise form_error(
            where, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length."
        )


def _walk(components: list[JSON]) -> Iterator[JSON]:
    """Every component, a parent before its children (the order Discord numbers them in)."""
    for component in components:
        yield component
        yield from _walk(component.get("components") or [])
        if isinstance(component.get("component"), dict):
            yield from _walk([component["component"]])


def _assign_ids(components: list[JSON]) -> None:
    """Discord numbers components without an `id` 1, 2, 3 ..., skipping ids already taken."""
    taken = {c["id"] for c in _walk(components) if c.get("id") is not None}
    counter = 0
    for component in _walk(components):
        if component.get("id") is None:
            counter += 1
            while counter in taken:
                counter += 1
            component["id"] = counter


# --- the user's side --------------------------------------------------------------------------


def inputs(modal: JSON) -> dict[str, JSON]:
    """The fillable components (text inputs, selects) of a modal by custom_id."""
    return {
        c["custom_id"]: c
        for c in _walk(modal["components"])
        if c.get("type") in (TEXT_INPUT, STRING_SELECT)
    }


def submission(modal: JSON, values: dict[str, Any]) -> JSON:
    """MODAL_SUBMIT `data` for these values, in the modal's structure; ValueError for what the
    client would not let the user send (a required field left empty, a length out of bounds)."""
    fields = inputs(modal)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"the modal has no input {unknown} (inputs: {sorted(fields)})")
    components: list[JSON] = []
    for top in modal["components"]:
        if top["type"] == ACTION_ROW:
            item = top["components"][0]
            answer = {"type": ACTION_ROW, "id": top["id"], "components": [_answer(item, values)]}
        elif top["type"] == LABEL:
            answer = {
                "type": LABEL,
                "id": top["id"],
                "component": _answer(top["component"], values),
            }
        else:
            answer = {"type": top["type"], "id": top["id"]}
        components.append(answer)
    return {"custom_id": modal["custom_id"], "components": components}


def _answer(item: JSON, values: dict[str, Any]) -> JSON:
    custom_id = item["custom_id"]
    required = item.get("required", True)
    base = {"type": item["type"], "id": item["id"], "custom_id": custom_id}
    if item["type"] == TEXT_INPUT:
        value = values.get(custom_id, item.get("value") or "")
        if not isinstance(value, str):
            raise TypeError(f"the text input {custom_id!r} takes a str, not {value!r}")
        if not value and required:
            raise ValueError(
                f"the text input {custom_id!r} is required; the client will not submit"
            )
        low, high = item.get("min_length") or 0, item.get("max_length") or MAX_TEXT
        if value and not low <= len(value) <= high:
            raise ValueError(
                f"the text input {custom_id!r} takes {low}..{high} characters, not {len(value)}"
            )
        return {**base, "value": value}
    defaults = [o["value"] for o in item["options"] if o.get("default")]
    chosen = values.get(custom_id, defaults)
    if isinstance(chosen, str) or not all(isinstance(v, str) for v in chosen):
        raise TypeError(f"the select {custom_id!r} takes a list of option values")
    offered = {o["value"] for o in item["options"]}
    if set(chosen) - offered:
        raise ValueError(f"the select {custom_id!r} has no option {sorted(set(chosen) - offered)}")
    low, high = item.get("min_values", 1), item.get("max_values", 1)
    if (chosen or required) and not low <= len(chosen) <= high:
        raise ValueError(f"the select {custom_id!r} takes {low}..{high} values")
    return {**base, "values": list(chosen)}
