"""Multi-prompts: ``hot:: dog`` is two concepts, ``hot::2 dog`` weighs the first twice as much.

A weight follows ``::`` directly and belongs to the text before it; text without one weighs 1.
Negative weights push a concept away; ``--no a, b`` is ``a::-.5 b::-.5`` (Midjourney's own
equivalence). All weights are divided by the total of the positive ones, which must be above 0
unless image links carry the prompt. Parts that end up with weight 0 are dropped.
"""

from __future__ import annotations

import math
import re

from imagine.prompt.errors import PromptError

Parts = tuple[tuple[str, float], ...]

NO_WEIGHT = -0.5
_WEIGHT = r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_SEPARATOR = re.compile(rf"::(?:({_WEIGHT})(?=\s|$))?")
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
        chunks.append((text[start : separator.start()], separator[1]))
        start = separator.end()
    chunks.append((text[start:], None))
    parts: list[tuple[str, float]] = []
    for chunk, raw_weight in chunks:
        words = " ".join(chunk.split())
        weight = 1.0 if raw_weight is None else float(raw_weight)
        if not math.isfinite(weight):
            raise _weight_error(f"the weight ::{raw_weight} is too large.")
        if words:
            parts.append((words, weight))
    return parts


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
    if not math.isfinite(positive):
        raise _weight_error("the `::` weights are too large.")
    if abs(positive - 1.0) > _TOLERANCE:
        scaled = [(words, weight / positive) for words, weight in parts]
        if not all(math.isfinite(weight) for _, weight in scaled):
            raise _weight_error("a negative `::` weight is too large beside the positive ones.")
        text_count = sum(1 for _, weight in scaled[: len(text_parts)] if weight != 0)
        return tuple((words, w) for words, w in scaled if w != 0), text_count
    return tuple(parts), len(text_parts)
