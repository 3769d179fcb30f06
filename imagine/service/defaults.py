"""An API token's defaults (TheNextLeg's ``/v2/settings``): the speed, version, raw mode, stylize
and remix a token's later jobs get, unless their prompt says otherwise.

Each default is the parameter Midjourney's own /settings appends, and is appended the same way:
only when the prompt does not set that parameter itself.
"""

from __future__ import annotations

import re
from typing import Any

from imagine.codes import ResultCode
from imagine.errors import ServiceError
from imagine.prompt.params import canonical_version

STYLIZE = {"low": 50, "med": 100, "high": 250, "very high": 750}
"""Midjourney's stylize settings."""
FIELDS = ("speed", "version", "raw", "stylize", "remix")
TOGGLES = (
    "fast", "relax", "turbo", "remix", "raw", "stylize low", "stylize med", "stylize high",
    "stylize very high", "version <number> (e.g. version 6.1)", "reset",
)  # fmt: skip
_SETS = {
    "speed": ("--fast", "--relax", "--turbo"),
    "version": ("--v", "--version", "--niji"),
    "raw": ("--style",),
    "stylize": ("--s", "--stylize"),
}


def with_defaults(msg: str, defaults: dict[str, Any]) -> str:
    """``msg`` with the parameters of ``defaults`` it does not set itself appended."""
    if not defaults:
        return msg
    words = {w.lower() for w in re.findall(r"(?<!\S)(?:--|—)\S+", msg.replace("—", "--"))}
    extra: list[str] = []

    def unset(name: str) -> bool:
        return not any(flag in words for flag in _SETS[name])

    if (speed := defaults.get("speed")) and unset("speed"):
        extra.append(f"--{speed}")
    if (version := defaults.get("version")) and unset("version"):
        extra.append(f"--v {version}")
    if defaults.get("raw") and unset("raw"):
        extra.append("--style raw")
    if (stylize := defaults.get("stylize")) and unset("stylize"):
        extra.append(f"--s {STYLIZE[stylize]}")
    return " ".join([msg.rstrip(), *extra]) if extra else msg


def toggled(current: dict[str, Any], toggle: str) -> dict[str, Any]:
    """The defaults after one of TheNextLeg's ``settingsToggle`` values; a ServiceError with the
    choices for one it does not know."""
    value = " ".join(toggle.strip().lower().replace("mode", " ").replace("_", " ").split())
    settings = dict(current)
    if value == "reset":
        return {}
    if value in ("fast", "relax", "turbo"):
        if settings.get("speed") == value:
            settings.pop("speed")
        else:
            settings["speed"] = value
        return settings
    if value in ("remix", "raw"):
        settings[value] = not settings.get(value, False)
        return settings
    if value.startswith("stylize ") and value[8:] in STYLIZE:
        settings["stylize"] = value[8:]
        return settings
    match = re.fullmatch(r"(?:version|v|mj version|midjourney model v?)\s*([\d.]+)", value)
    if match and (version := canonical_version(match.group(1))) is not None:
        settings["version"] = version
        return settings
    raise ServiceError(
        400,
        ResultCode.INVALID_PARAMETER,
        f"settingsToggle {toggle[:60]!r} is not a setting; use one of: {', '.join(TOGGLES)}.",
    )


def shown(settings: dict[str, Any]) -> dict[str, Any]:
    """Every default, set or not, as a client reads them."""
    return {
        "speed": settings.get("speed", "fast"),
        "version": settings.get("version"),
        "raw": bool(settings.get("raw", False)),
        "stylize": settings.get("stylize", "med"),
        "remix": bool(settings.get("remix", False)),
    }
