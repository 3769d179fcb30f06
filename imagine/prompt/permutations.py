"""Permutation prompts: ``a {red, blue} car`` is two prompts, ``a red car`` and ``a blue car``.

Groups nest (``{a {b, c}, d}``), and a backslash escapes ``{``, ``}``, ``,`` and itself, so
``{salt\\, pepper, oil}`` has two options. Expansion happens on the raw message, before anything
else is parsed, so options may hold parameters too (``--ar {1:1, 16:9}``), as in Midjourney.
The number of results is counted before anything is expanded: ``{a,b}`` thirty times is refused
without building a billion strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from imagine.prompt.errors import MAX_JOBS, PromptError

ESCAPABLE = frozenset("{},\\")
MAX_DEPTH = 16
"""Deeper nesting is refused; it also bounds the recursion of counting and expanding."""
SHOWN_COUNT = 1_000_000
"""Past this many prompts a refusal says "more than" instead of counting on."""

_HOW = "Permutations look like `{red, blue} car`; write `\\{` for a literal brace."


@dataclass
class _Group:
    alternatives: list[list[str | _Group]] = field(default_factory=lambda: [[]])


def _error(message: str) -> PromptError:
    return PromptError(
        f"Invalid parameter: in the {{}} permutations, {message} {_HOW}", parameter="{}"
    )


def _parse(msg: str) -> list[str | _Group]:
    root: list[str | _Group] = []
    open_groups: list[_Group] = []
    current = root
    text: list[str] = []

    def flush() -> None:
        if text:
            current.append("".join(text))
            text.clear()

    index = 0
    while index < len(msg):
        char = msg[index]
        index += 1
        if char == "\\" and index < len(msg) and msg[index] in ESCAPABLE:
            text.append(msg[index])
            index += 1
        elif char == "{":
            flush()
            if len(open_groups) == MAX_DEPTH:
                raise _error(f"groups are nested more than {MAX_DEPTH} deep.")
            group = _Group()
            current.append(group)
            open_groups.append(group)
            current = group.alternatives[-1]
        elif char == "," and open_groups:
            flush()
            open_groups[-1].alternatives.append([])
            current = open_groups[-1].alternatives[-1]
        elif char == "}":
            if not open_groups:
                raise _error("a `}` has no `{` before it.")
            flush()
            open_groups.pop()
            current = open_groups[-1].alternatives[-1] if open_groups else root
        else:
            text.append(char)
    if open_groups:
        raise _error("a `{` is never closed.")
    flush()
    return root


def _count(sequence: list[str | _Group], cap: int) -> int:
    """How many strings ``sequence`` expands to, or ``cap`` if at least that many."""
    total = 1
    for item in sequence:
        if isinstance(item, _Group):
            options = min(cap, sum(_count(alternative, cap) for alternative in item.alternatives))
            total = min(cap, total * options)
    return total


def _expand(sequence: list[str | _Group]) -> list[str]:
    results = [""]
    for item in sequence:
        if isinstance(item, str):
            results = [result + item for result in results]
        else:
            options = [
                option.strip()
                for alternative in item.alternatives
                for option in _expand(alternative)
            ]
            results = [result + option for result in results for option in options]
    return results


def expand_permutations(msg: str, limit: int = MAX_JOBS) -> list[str]:
    """Every prompt ``msg`` stands for, in order; escapes resolved. At most ``limit`` of them."""
    sequence = _parse(msg)
    count = _count(sequence, SHOWN_COUNT + 1)
    if count > limit:
        made = f"more than {SHOWN_COUNT:,}" if count > SHOWN_COUNT else f"{count:,}"
        raise PromptError(
            f"Invalid parameter: the {{}} permutations make {made} prompts; the limit is {limit}.",
            parameter="{}",
        )
    return _expand(sequence)


def escape(text: str) -> str:
    """``text`` written so that :func:`expand_permutations` gives it back unchanged."""
    return text.replace("\\", "\\\\").replace("{", "\\{").replace("}", "\\}")
