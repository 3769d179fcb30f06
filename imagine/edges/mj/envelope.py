"""midjourney-proxy's submit envelope ``{code, description, result, properties}`` and its codes.

Its clients read domain errors from ``code`` in an HTTP 200 (new-api charges only for 1, 21 and
22, and turns any other code's description into the task's failReason), so every refusal is
one of these, with a sentence in ``description``; never a 5xx and never a body that is not JSON.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

SUCCESS = 1
NOT_FOUND = 3
VALIDATION_ERROR = 4
FAILURE = 9
EXISTED = 21
"""An upscale pressed before (its task id and image), or a press waiting for its modal."""
IN_QUEUE = 22
QUEUE_REJECTED = 23
BANNED_PROMPT = 24

_PATH = re.compile(r"^/(?:mj-(fast|relax|turbo)/)?mj(?:/|$)")
KEEP_STATUS = (401, 405)
"""Refusals of the request itself (its token, its method) keep their HTTP status."""


def is_mj(path: str) -> bool:
    return _PATH.match(path) is not None


def mode(path: str) -> str | None:
    """fast, relax or turbo from a ``/mj-<mode>/mj/…`` path (trueai's speed prefixes)."""
    match = _PATH.match(path)
    return match.group(1) if match else None


def answer(
    code: int, description: str, result: str | None = None, **properties: Any
) -> web.Response:
    return web.json_response(
        {"code": code, "description": description, "result": result, "properties": properties}
    )


def refusal(
    status: int, message: str, code: str | None, extra: dict[str, Any], *, keep: bool = False
) -> web.Response:
    """A ServiceError's status, result code and sentence as midjourney-proxy's code."""
    properties: dict[str, Any] = {}
    if code == "BANNED_PROMPT":
        number = BANNED_PROMPT
        properties = {
            "promptEn": extra.get("promptEn", ""),
            "bannedWord": extra.get("bannedWord", ""),
        }
    elif code == "QUEUE_FULL" or status == 429:
        number = QUEUE_REJECTED
    elif status == 409:  # there already: the task that is
        number = EXISTED
    elif status == 404:
        number = NOT_FOUND
    elif status in (400, 413, 415):
        number = VALIDATION_ERROR
    else:
        number = FAILURE
    if "retryAfter" in extra:
        properties["retryAfter"] = extra["retryAfter"]
    result = extra.get("messageId") if number == EXISTED else None
    response = answer(number, message, result, **properties)
    if keep or status in KEEP_STATUS:
        response.set_status(status)
    return response
