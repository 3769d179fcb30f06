"""Multi-prompts: ``hot:: dog`` is two concepts, ``hot::2 dog`` weighs the first twice as much.

A weight follows ``::`` directly and belongs to the text before it; text without one weighs 1.
It is a plain number from -10000 to 10000 (``::1e5``, ``::inf`` and ``::nan`` are refused rather
than read as text). Negative weights push a concept away; ``--no a, b`` is ``a::-.5 b::-.5``
(Midjourney's own equivalence). All weights are divided by the total of the positive ones, which
must be above 0 unless image links carry the prompt; divided, they must stay within that range
and not vanish into float rounding. Parts weighted 0 are dropped.
"""

from __future__ import annotations

import math
import re
import sys

from imagine.prompt.errors import PromptError, shown

Parts = tuple[tuple[str, float], ...]

NO_WEIGHT = -0.5
MAX_WEIGHT = 10_000
"""Weights lie between -MAX_WEIGHT and MAX_WEIGHT: only their ratios count, and a bound keeps
every sum of them far from overflowing a float."""
_WEIGHT = r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_SEPARATOR = re.compile(rf"::(?:({_WEIGHT})(?=\s|$))?")
_NOT_A_WEIGHT = re.compile(
    r"[-+]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[-+]?[0-9]*)?|inf(?:inity)?|nan)(?=\s|$)",
    re.IGNORECASE,
)
"""What reads as a number after ``::`` but is not a weight: an exponent, a plus sign, inf, nan."""
_TOLERANCE = 1e-9
"""Positive weights already adding up to 1 within this are kept as they are, so normalising a
normalised prompt changes nothing (dividing by 0.9999999999999999 would)."""


def _weight_error(message: str) -> PromptError:
    return PromptError(
        f"Invalid parameter: {message} Multi-prompts look like `hot::2 dog::1`.", parameter="::"
    )


def split_multi_prompt(text: str) -> list[tuple[str, float]]:
    """``"hot::2 dog"`` → ``[("hot", 2.0), ("dog", 1.0)]``; parts without words dropped."""
    chunks: list[tuple[str, str | None]] = []
    start = 0
    for separator in _SEPARATOR.finditer(text):
        if separator[1] is None and (bad := _NOT_A_WEIGHT.match(text, separator.end())):
            raise _weight_error(
                f"the weight ::{shown(bad[0])} is not a plain number (to start a part with "
                "it, put a space after the ::)."
            )
        chunks.append((text[start : separator.start()], separator[1]))
        start = separator.end()
    chunks.append((text[start:], None))
    parts: list[tuple[str, float]] = []
    for chunk, raw_weight in chunks:
        words = " ".join(chunk.split())
        weight = 1.0 if raw_weight is None else _checked_weight(raw_weight)
        if words:
            parts.append((words, weight))
    return parts


def _beyond_bound(weight: float) -> bool:
    # Within a hair of the bound counts as on it: a normal form may print a weight typed as
    # MAX_WEIGHT one rounding away from it, and must read back.
    return abs(weight) > MAX_WEIGHT * (1 + _TOLERANCE)


def _checked_weight(raw: str) -> float:
    weight = float(raw)
    if _beyond_bound(weight):
        size = "too large" if weight > 0 else "too far below 0"
        raise _weight_error(
            f"the weight ::{shown(raw)} is {size}; use a number between -{MAX_WEIGHT} "
            f"and {MAX_WEIGHT}."
        )
    return weight


def weigh(text: str, no_items: list[str], *, has_images: bool) -> tuple[Parts, int]:
    """The normalised parts of a prompt (text parts first, then ``--no`` items) and how many of
    them come from the text."""
    text_parts = split_multi_prompt(text)
    if not text_parts and not has_images:
        raise PromptError(
            "The prompt is empty: write what to draw (or start with an image link), "
            "then any parameters."
        )
    text_parts = [(words, weight) for words, weight in text_parts if weight != 0]
    if text_parts and math.fsum(weight for _, weight in text_parts) <= 0 and not has_images:
        # Midjourney: the sum of all `::` weights must be positive (--no items are not counted).
        raise _weight_error("the `::` weights, negative ones included, must add up to more than 0.")
    parts = [*text_parts, *((item, NO_WEIGHT) for item in no_items)]
    positive = math.fsum(weight for _, weight in parts if weight > 0)
    if positive == 0:
        if not has_images:
            raise _weight_error("the `::` weights must add up to more than 0.")
        return tuple(parts), len(text_parts)  # the images carry the prompt: nothing to scale
    if abs(positive - 1.0) > _TOLERANCE:
        scaled = [(words, weight / positive) for words, weight in parts]
        # Scaled, the weights are what a normal form prints: they must be in bounds too.
        if any(_beyond_bound(weight) for _, weight in scaled):
            raise _weight_error(
                f"a negative `::` weight (or a --no item, which weighs {NO_WEIGHT}) is more than "
                f"{MAX_WEIGHT} times the positive weights together."
            )
        # Scaled below the smallest normal float, a weight loses its digits (or becomes 0 and
        # is dropped), and the prompt would no longer read back as itself.
        if any(weight != 0 and abs(weight) / positive < sys.float_info.min for _, weight in parts):
            raise _weight_error(
                "a `::` weight is too small beside the others to count; leave it out or make "
                "it larger."
            )
        text_count = sum(1 for _, weight in scaled[: len(text_parts)] if weight != 0)
        return tuple((words, w) for words, w in scaled if w != 0), text_count
    return tuple(parts), len(text_parts)
