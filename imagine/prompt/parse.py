"""``msg`` → prompts: permutations, then image links, text and multi-prompt weights, parameters.

A message reads ``[image links] [text] [--parameters]``. Image links only count at the start
(Discord may wrap them as ``<https://…>``); the text runs up to the first parameter.
"""

from __future__ import annotations

import re

from imagine.prompt.errors import MAX_JOBS, PromptError
from imagine.prompt.links import checked_link, invalid_link, is_link
from imagine.prompt.model import ImaginePrompt
from imagine.prompt.params import is_parameter, parse_parameters
from imagine.prompt.permutations import expand_permutations
from imagine.prompt.weights import weigh

_GLUED_PARAMETER = re.compile(r"::(?=(?:--|[\u2014\u2013])[A-Za-z])")


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
        raise invalid_link(parts[0][0].split()[0], "must come first, before the prompt text")
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
        draft=params.draft,
        style_refs=tuple(params.sref),
        style_weight=params.sw,
        omni_ref=params.oref,
        omni_weight=params.ow,
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


__all__ = ["checked_link", "is_link", "parse"]
