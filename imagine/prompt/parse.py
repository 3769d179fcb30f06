"""``msg`` → prompts: permutations, then image links, text and multi-prompt weights, parameters.

A message reads ``[image links] [text] [--parameters]``. Image links only count at the start
(Discord may wrap them as ``<https://…>``); the text runs up to the first parameter.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from imagine.codes import ResultCode
from imagine.prompt.errors import MAX_JOBS, PromptError, shown
from imagine.prompt.model import ImaginePrompt
from imagine.prompt.params import is_parameter, parse_parameters
from imagine.prompt.permutations import expand_permutations
from imagine.prompt.weights import weigh

_LINK_STARTS = ("http://", "https://", "<http://", "<https://")
_GLUED_PARAMETER = re.compile(r"::(?=(?:--|[\u2014\u2013])[A-Za-z])")


def is_link(token: str) -> bool:
    """True when ``token`` is meant as a link (it may still be malformed)."""
    return token.lower().startswith(_LINK_STARTS)


def _invalid_link(token: str, why: str) -> PromptError:
    return PromptError(
        f"Invalid link: `{shown(token)}` {why}. Image links look like https://example.com/a.png.",
        code=ResultCode.INVALID_LINK,
    )


def checked_link(token: str) -> str:
    """The URL in ``token`` (``<…>`` removed), or INVALID_LINK saying what is wrong with it."""
    url = token
    if url.startswith("<"):
        if not url.endswith(">"):
            raise _invalid_link(token, "opens with < but does not close with >")
        url = url[1:-1]
    if "<" in url or ">" in url:
        raise _invalid_link(token, "contains < or >")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - reading it validates the port
        if host:
            host.encode("idna")
    except (ValueError, UnicodeError):
        raise _invalid_link(token, "is not a valid web address") from None
    if not host:
        raise _invalid_link(token, "has no host name")
    return url


def _parse_one(msg: str) -> tuple[ImaginePrompt, int]:
    # "cat::--ar 16:9" means "cat:: --ar 16:9", not a part named "--ar".
    tokens = _GLUED_PARAMETER.sub(":: ", msg).split()
    start = 0
    images: list[str] = []
    while start < len(tokens) and is_link(tokens[start]):
        images.append(checked_link(tokens[start]))
        start += 1
    end = next((i for i in range(start, len(tokens)) if is_parameter(tokens[i])), len(tokens))
    params = parse_parameters(tokens[end:])
    parts, text_count = weigh(" ".join(tokens[start:end]), params.no, has_images=bool(images))
    if text_count and is_link(parts[0][0]):
        # Only reachable through `::` (":: https://…"); links anywhere but the start are text.
        raise _invalid_link(parts[0][0].split()[0], "must come first, before the prompt text")
    prompt = ImaginePrompt(
        image_urls=tuple(images),
        parts=parts,
        negative=tuple(words for words, weight in parts if weight < 0),
        aspect=params.aspect,
        seed=params.seed,
        chaos=params.chaos,
        stylize=params.stylize,
        quality=params.quality,
        stop=params.stop,
        weird=params.weird,
        style=params.style,
        tile=params.tile,
        image_weight=params.image_weight,
        version=params.version,
        speed=params.speed,
        zoom=params.zoom,
    )
    return prompt, params.repeat


def parse(msg: str) -> list[ImaginePrompt]:
    """Every prompt ``msg`` asks for, in order: one per permutation, each ``--repeat`` times.

    Raises :class:`PromptError` (and nothing else, whatever ``msg`` holds) when the message
    cannot be run, naming the parameter at fault.
    """
    parsed = [_parse_one(variant) for variant in expand_permutations(msg, MAX_JOBS)]
    jobs = sum(repeat for _, repeat in parsed)
    if jobs > MAX_JOBS:
        raise PromptError(
            f"Invalid parameter: --repeat with the {{}} permutations makes {jobs} jobs; "
            f"the limit is {MAX_JOBS}.",
            parameter="--repeat",
        )
    return [prompt for prompt, repeat in parsed for _ in range(repeat)]
