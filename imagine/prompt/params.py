"""Midjourney's ``--`` parameters: names, aliases, ranges, and the checking of their values.

A parameter starts a whitespace-separated token with ``--``, an em dash or an en dash (Discord
and phone keyboards turn ``--`` into a dash) followed by a letter; the tokens up to the next
parameter are its value. Every message names the parameter and what it accepts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from imagine.prompt.errors import PromptError, shown
from imagine.prompt.links import reference_links

_MARKER = re.compile(r"(?:--|[\u2014\u2013])(?=[A-Za-z])")

# fmt: off
ALIASES: dict[str, str] = {
    "ar": "ar", "aspect": "ar",
    "c": "chaos", "chaos": "chaos",
    "s": "stylize", "stylize": "stylize",
    "q": "quality", "quality": "quality",
    "r": "repeat", "repeat": "repeat",
    "w": "weird", "weird": "weird",
    "v": "v", "version": "v",
    "niji": "niji", "seed": "seed", "stop": "stop", "iw": "iw", "style": "style",
    "tile": "tile", "no": "no", "fast": "fast", "relax": "relax", "turbo": "turbo",
    "zoom": "zoom", "draft": "draft",
    "sref": "sref", "sw": "sw", "oref": "oref", "ow": "ow",
    "cref": "oref", "cw": "ow",  # Midjourney's older names for the omni reference
}
# fmt: on
"""Every accepted name → the canonical name used in messages and in normalised prompts."""

INT_RANGES: dict[str, tuple[int, int]] = {
    "chaos": (0, 100),
    "stylize": (0, 1000),
    "stop": (10, 100),
    "weird": (0, 3000),
    "repeat": (1, 40),
    "seed": (0, 2**32 - 1),
    "sw": (0, 1000),
    "ow": (1, 1000),
}
IMAGE_WEIGHT_RANGE = (0.0, 3.0)
ZOOM_RANGE = (1.0, 2.0)
"""Custom Zoom's factor, as Midjourney takes it."""
QUALITIES = (0.25, 0.5, 1.0, 2.0)
STYLES = ("raw", "cute", "expressive", "original", "scenic", "4a", "4b", "4c")
SPEEDS = ("fast", "relax", "turbo")
MAX_STYLE_REFERENCES = 5
"""Links one ``--sref`` may name."""
MAX_ASPECT = 4
"""``--ar`` may be at most 4:1 either way."""

_WHOLE = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_RATIO = re.compile(r"([0-9]+):([0-9]+)")
_VERSION = re.compile(r"([0-9]{1,4})(?:\.([0-9]{1,4}))?")


@dataclass
class Parameters:
    """The parameters of one prompt, at Midjourney's defaults until a parameter says otherwise."""

    aspect: tuple[int, int] = (1, 1)
    seed: int | None = None
    chaos: int = 0
    stylize: int = 100
    quality: float = 1.0
    stop: int = 100
    weird: int = 0
    repeat: int = 1
    style: str | None = None
    tile: bool = False
    image_weight: float = 1.0
    version: str | None = None
    speed: str | None = None
    zoom: float | None = None
    no: list[str] = field(default_factory=list)
    draft: bool = False
    sref: list[str] = field(default_factory=list)
    sw: int = 100
    oref: str | None = None
    ow: int = 100


def is_parameter(token: str) -> bool:
    return _MARKER.match(token) is not None


def _invalid(name: str, message: str) -> PromptError:
    return PromptError(f"Invalid parameter: --{name} {message}", parameter=f"--{name}")


def _one_value(name: str, values: Sequence[str], example: str) -> str:
    if not values:
        raise _invalid(name, f"needs a value, e.g. `--{name} {example}`.")
    if len(values) > 1:
        raise _invalid(
            name,
            f"takes one value, got `{shown(' '.join(values))}`; "
            "parameters go at the end, after the prompt text.",
        )
    return values[0]


def _whole(name: str, values: Sequence[str]) -> int:
    low, high = INT_RANGES[name]
    raw = _one_value(name, values, str(high // 2))
    if not _WHOLE.fullmatch(raw):
        raise _invalid(name, f"must be a whole number between {low} and {high}, got {shown(raw)}")
    digits = raw.lstrip("-").lstrip("0") or "0"
    # Compare lengths before int(): a 5000-digit value would exceed Python's int() digit limit.
    if (
        raw.startswith("-")
        or len(digits) > len(str(high))
        or int(digits) > high
        or int(digits) < low
    ):
        raise _invalid(name, f"must be between {low} and {high}, got {shown(raw)}")
    return int(digits)


def canonical_version(raw: str) -> str | None:
    """``"06.10"`` → ``"6.1"``; None unless ``raw`` is a version number like 6 or 5.2."""
    match = _VERSION.fullmatch(raw)
    if match is None:
        return None
    major = match[1].lstrip("0") or "0"
    minor = (match[2] or "").rstrip("0")
    if major == "0" and not minor:
        return None
    return f"{major}.{minor}" if minor else major


def _aspect(params: Parameters, values: Sequence[str]) -> None:
    raw = _one_value("ar", values, "16:9")
    match = _RATIO.fullmatch(raw)
    if match is None or len(match[1]) > 6 or len(match[2]) > 6:
        raise _invalid("ar", f"must be two whole numbers like 16:9, got {shown(raw)}")
    width, height = int(match[1]), int(match[2])
    if width == 0 or height == 0:
        raise _invalid("ar", f"sides must be greater than 0, got {shown(raw)}")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise _invalid("ar", f"can be at most 4:1 or 1:4, got {shown(raw)}")
    divisor = math.gcd(width, height)
    params.aspect = (width // divisor, height // divisor)


def _image_weight(params: Parameters, values: Sequence[str]) -> None:
    low, high = IMAGE_WEIGHT_RANGE
    raw = _one_value("iw", values, "1.5")
    value = float(raw) if _DECIMAL.fullmatch(raw) else math.nan
    if not low <= value <= high:
        raise _invalid("iw", f"must be a number between 0 and 3, got {shown(raw)}")
    params.image_weight = value + 0.0  # + 0.0 turns -0.0 into 0.0


def _zoom(params: Parameters, values: Sequence[str]) -> None:
    low, high = ZOOM_RANGE
    raw = _one_value("zoom", values, "1.5")
    value = float(raw) if _DECIMAL.fullmatch(raw) else math.nan
    if not low <= value <= high:
        raise _invalid("zoom", f"must be a number from 1 to 2 (Custom Zoom), got {shown(raw)}")
    params.zoom = value


def _quality(params: Parameters, values: Sequence[str]) -> None:
    raw = _one_value("quality", values, ".5")
    value = float(raw) if _DECIMAL.fullmatch(raw) else math.nan
    if value not in QUALITIES:
        raise _invalid("quality", f"must be one of .25, .5, 1 or 2, got {shown(raw)}")
    params.quality = value


def _style(params: Parameters, values: Sequence[str]) -> None:
    raw = _one_value("style", values, "raw").lower()
    if raw not in STYLES:
        raise _invalid("style", f"must be one of {', '.join(STYLES)}; got {shown(raw)}")
    params.style = raw


def _version(params: Parameters, values: Sequence[str]) -> None:
    raw = _one_value("v", values, "6")
    version = canonical_version(raw)
    if version is None:
        raise _invalid("v", f"must be a version number such as 6 or 5.2, got {shown(raw)}")
    params.version = version


def _niji(params: Parameters, values: Sequence[str]) -> None:
    if not values:
        params.version = "niji"
        return
    raw = _one_value("niji", values, "6")
    version = canonical_version(raw)
    if version is None:
        raise _invalid("niji", f"must be a version number such as 6, got {shown(raw)}")
    params.version = f"niji {version}"


def _no(params: Parameters, values: Sequence[str]) -> None:
    joined = " ".join(values)
    if "::" in joined:
        raise _invalid("no", "takes words separated by commas, not `::` weights.")
    items = [" ".join(item.split()) for item in joined.split(",")]
    items = [item for item in items if item]
    if not items:
        raise _invalid("no", "needs at least one word, e.g. `--no text, watermark`.")
    params.no.extend(items)


def _flag(name: str) -> Callable[[Parameters, Sequence[str]], None]:
    def apply(params: Parameters, values: Sequence[str]) -> None:
        if values:
            raise _invalid(
                name,
                f"takes no value, got `{shown(' '.join(values))}`; "
                "parameters go at the end, after the prompt text.",
            )
        if name in ("tile", "draft"):
            setattr(params, name, True)
        else:
            params.speed = name

    return apply


def _sref(params: Parameters, values: Sequence[str]) -> None:
    params.sref = reference_links("sref", values, MAX_STYLE_REFERENCES)


def _oref(params: Parameters, values: Sequence[str]) -> None:
    params.oref = reference_links("oref", values, 1)[0]


def _integer(name: str) -> Callable[[Parameters, Sequence[str]], None]:
    def apply(params: Parameters, values: Sequence[str]) -> None:
        setattr(params, name, _whole(name, values))

    return apply


_APPLY: dict[str, Callable[[Parameters, Sequence[str]], None]] = {
    "ar": _aspect,
    "iw": _image_weight,
    "zoom": _zoom,
    "quality": _quality,
    "style": _style,
    "v": _version,
    "niji": _niji,
    "no": _no,
    "sref": _sref,
    "oref": _oref,
    **{name: _integer(name) for name in INT_RANGES},
    **{name: _flag(name) for name in ("tile", "draft", *SPEEDS)},
}

_SLOTS = {"fast": "speed", "relax": "speed", "turbo": "speed", "v": "version", "niji": "version"}
"""Parameters that set the same thing: only one of each slot per prompt."""


def _grouped(tokens: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``["--ar", "16:9", "--tile"]`` → ``[("ar", ["16:9"]), ("tile", [])]`` (names as typed)."""
    groups: list[tuple[str, list[str]]] = []
    for token in tokens:
        marker = _MARKER.match(token)
        if marker is not None:
            groups.append((token[marker.end() :], []))
        elif groups:
            groups[-1][1].append(token)
    return groups


def parse_parameters(tokens: Sequence[str]) -> Parameters:
    """Check and apply the parameter tokens (the first is a parameter) of one prompt."""
    groups = _grouped(tokens)
    unknown = [f"--{name}" for name, _ in groups if name.lower() not in ALIASES]
    if unknown:
        names = ", ".join(f"`{shown(name)}`" for name in dict.fromkeys(unknown))
        raise PromptError(f"Unrecognized parameter(s): {names}", parameter=shown(unknown[0]))
    params = Parameters()
    seen: dict[str, str] = {}  # slot -> the parameter that set it
    for typed, values in groups:
        name = ALIASES[typed.lower()]
        slot = _SLOTS.get(name, name)
        earlier = seen.get(slot)
        if earlier == name and name != "no":
            raise _invalid(name, "is given more than once; keep one.")
        if earlier is not None and earlier != name:
            raise _invalid(name, f"cannot be combined with --{earlier}; keep one of them.")
        seen[slot] = name
        _APPLY[name](params, values)
    for weight, reference in (("sw", "sref"), ("ow", "oref")):
        if weight in seen and reference not in seen:
            raise _invalid(
                weight, f"is the weight of --{reference}; add `--{reference} <image link>`."
            )
    return params
