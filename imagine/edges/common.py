"""What both contract edges share: errors as JSON sentences, the API tokens, CORS, and reading
bodies and their fields. Domain errors become responses here and in the edges, nowhere else."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from imagine.codes import ResultCode
from imagine.edges.mj import envelope
from imagine.errors import ServiceError
from imagine.keys import CLOSE_CONNECTION, SETTINGS, TOKEN
from imagine.storage import StorageError
from imagine.store import StoreError, StoreUnavailable

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
"""A v2 body without images (a prompt and its options)."""
MAX_DATA_BODY = 25 * 1024 * 1024
"""A body that carries images as base64 (midjourney-proxy's data URLs, a mask): five images of
a few MB each, as its clients send them."""
OPEN_PATHS = ("/health",)
CORS_HEADERS = "Authorization, Content-Type, Content-Encoding, mj-api-secret"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


MJ_ONLY = ("bannedWord", "promptEn")
"""What midjourney-proxy's envelope tells of a refusal and TheNextLeg's does not."""


def _v2_error(status: int, message: str, code: str | None, extra: dict[str, Any]) -> web.Response:
    body: dict[str, Any] = {"success": False, "msg": message}
    if code:
        body["code"] = code
    body.update((k, v) for k, v in extra.items() if k not in MJ_ONLY)
    return web.json_response(body, status=status)


def refuse(
    request: web.Request,
    status: int,
    message: str,
    code: str | None = None,
    *,
    keep: bool = False,
    **extra: Any,
) -> web.Response:
    """An error in the request's contract: TheNextLeg's ``{success: false, msg}`` with the HTTP
    status, or midjourney-proxy's envelope (HTTP 200 and a code, as its clients expect)."""
    if envelope.is_mj(request.path):
        return envelope.refusal(status, message, code, extra, keep=keep)
    return _v2_error(status, message, code, extra)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ServiceError as exc:
        response = refuse(
            request, exc.status, exc.message, exc.code.value if exc.code else None, **exc.extra
        )
        if "retryAfter" in exc.extra:
            response.headers["Retry-After"] = str(exc.extra["retryAfter"])
        if request.get(CLOSE_CONNECTION):
            response.force_close()
        return response
    except web.HTTPRequestEntityTooLarge:
        limit = MAX_DATA_BODY if _carries_images(request) else MAX_BODY
        return refuse(request, 413, f"The request body is too large; the limit is {_size(limit)}.")
    except StoreError as exc:  # a read that failed: the database is locked, gone or damaged
        log.error("the job database failed on %s %s: %s", request.method, request.path, exc)
        what = "reached" if isinstance(exc, StoreUnavailable) else "read"
        response = refuse(
            request,
            503,
            f"The job database cannot be {what} right now. Try again in a few seconds.",
        )
        response.headers["Retry-After"] = "5"
        return response
    except StorageError as exc:
        log.error("the image storage failed on %s %s: %s", request.method, request.path, exc)
        response = refuse(
            request, 503, "The image storage cannot be read right now. Try again shortly."
        )
        response.headers["Retry-After"] = "5"
        return response
    except web.HTTPNotFound:
        return refuse(request, 404, f"There is no endpoint at {request.path}.", keep=True)
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        response = refuse(
            request, 405, f"{request.method} is not allowed on {request.path}; use {allowed}."
        )
        response.headers["Allow"] = allowed
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return refuse(request, exc.status, exc.text or exc.reason)
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return refuse(
            request,
            500,
            "Something went wrong on our side; it is in the service's log.",
            "INTERNAL_ERROR",
        )


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"


def _carries_images(request: web.Request) -> bool:
    return envelope.is_mj(request.path) or request.path in ("/v2/button", "/v2/describe")


def _given_token(request: web.Request) -> str:
    """The token a request carries: ``mj-api-secret`` (midjourney-proxy's header), else
    ``Authorization: Bearer <token>``, or a bare ``Authorization: <token>`` as trueai's
    midjourney-proxy takes it."""
    if "mj-api-secret" in request.headers:  # sent, it decides (even when wrong or empty)
        return request.headers["mj-api-secret"].strip()
    header = request.headers.get("Authorization", "").strip()
    scheme, _, rest = header.partition(" ")
    return rest.strip() if scheme.lower() == "bearer" else header


@web.middleware
async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    tokens = request.app[SETTINGS].api_tokens
    if request.method == "OPTIONS":  # a CORS preflight carries no credentials
        return await handler(request)
    if not tokens or request.path in OPEN_PATHS or request.path.startswith("/images/"):
        return await handler(request)  # every client is the same one tenant, whatever it sends
    given = _given_token(request).encode()
    # compare_digest against every token, so timing tells nothing about which one nearly matched
    matched = [t for t in tokens if hmac.compare_digest(given, t.encode())]
    if not matched:
        what = (
            "mj-api-secret: <token>"
            if envelope.is_mj(request.path)
            else "Authorization: Bearer <token>"
        )
        return refuse(request, 401, f"Unauthorized: send the header '{what}' with a valid token.")
    request[TOKEN] = matched[0]
    return await handler(request)


def token(request: web.Request) -> str | None:
    """The API token the request came with: whose jobs it may see."""
    return request.get(TOKEN) or None


@web.middleware
async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Pages on other origins may call the API and load its images (midjourney-proxy's web
    front ends do); a preflight is answered here, before auth, as browsers send it bare."""
    origins = request.app[SETTINGS].cors_origins
    origin = request.headers.get("Origin", "")
    allowed = "*" if "*" in origins else (origin if origin.rstrip("/") in origins else "")
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        response: web.StreamResponse = web.Response(status=204)
        if allowed:
            response.headers.update({
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": CORS_HEADERS,
                "Access-Control-Max-Age": "86400",
            })  # fmt: skip
    else:
        response = await handler(request)
    if allowed and origin:
        response.headers["Access-Control-Allow-Origin"] = allowed
        response.headers["Access-Control-Expose-Headers"] = "Retry-After, ETag"
        if allowed != "*":
            response.headers["Vary"] = "Origin"
    return response


ENCODINGS = ("gzip", "deflate", "br", "zstd", "identity")


async def body(request: web.Request, limit: int = MAX_BODY) -> dict[str, Any]:
    """The request's JSON object; ServiceError with a sentence for anything else."""
    if not request.body_exists:
        raise ServiceError(400, None, "The request has no body: send a JSON object.")
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower() or "identity"
    if encoding not in ENCODINGS:
        raise ServiceError(
            415,
            None,
            f"Content-Encoding {encoding[:40]!r} is not supported: send the body plain, or as "
            "gzip, deflate, br or zstd.",
        )
    try:
        raw = await request.read()
    except web.RequestPayloadError:  # the decoder refused the body
        # Nothing more of it will be read: without this aiohttp would read on after the answer
        # (and log the same error again), and the connection is not reused.
        request.content.feed_eof()
        request[CLOSE_CONNECTION] = True
        raw = b""
    if len(raw) > limit:  # chunked, or decompressed past the limit
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(raw))
    if not raw and encoding != "identity":  # refused, or a stream cut short: decodes to nothing
        raise ServiceError(
            400,
            None,
            f"The body is not valid {encoding} data, as its Content-Encoding header says: "
            "compress it that way, or drop the header.",
        )
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ServiceError(400, None, "The body is not UTF-8 text: send a JSON object.") from None
    except ValueError as exc:
        raise ServiceError(400, None, f"The body is not valid JSON ({exc}).") from None
    except RecursionError:
        raise ServiceError(
            400, None, "The body is nested too deeply: send a flat JSON object."
        ) from None
    if not isinstance(data, dict):
        raise ServiceError(400, None, 'The body must be a JSON object, like {"msg": "a cat"}.')
    return data


def string(data: dict[str, Any], name: str, *, required: bool = False, limit: int = 4000) -> str:
    value = data.get(name)
    if value is None:
        if required:
            raise ServiceError(400, None, f"'{name}' is missing: it must be a string.")
        return ""
    if not isinstance(value, str):
        raise ServiceError(400, None, f"'{name}' must be a string, not {type(value).__name__}.")
    if "\x00" in value:
        raise ServiceError(400, None, f"'{name}' contains a NUL character.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ServiceError(
            400, None, f"'{name}' is not valid UTF-8 text (it has a lone surrogate)."
        ) from None
    if len(value) > limit:
        raise ServiceError(
            400, None, f"'{name}' is {len(value)} characters long; the limit is {limit}."
        )
    return value


def whole(data: dict[str, Any], name: str, low: int = 1, high: int = 1_000_000) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ServiceError(400, None, f"'{name}' must be a whole number from {low} to {high}.")
    return value


def number(data: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = data.get(name)
    if isinstance(value, str) and value.strip():
        with contextlib.suppress(ValueError):
            value = float(value)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ServiceError(
            400,
            ResultCode.INVALID_PARAMETER,
            f"'{name}' must be a number from {low:g} to {high:g}.",
        )
    return float(value)


def flag(data: dict[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", ""):
        return value.strip().lower() in ("true", "1")
    raise ServiceError(
        400, None, f'\'{name}\' must be true or false (a boolean or the string "true"/"false").'
    )


_DATA_URL = re.compile(r"data:image/[\w.+-]+(?:;[\w=.+-]+)*;base64,", re.IGNORECASE)


def image_data(value: object, name: str) -> bytes:
    """An image sent as a data URL (``data:image/png;base64,…``) or bare base64; its bytes."""
    if not isinstance(value, str) or not value.strip():
        raise ServiceError(
            400, ResultCode.INVALID_PARAMETER,
            f"'{name}' must be an image as a data URL, like \"data:image/png;base64,iVBOR…\".",
        )  # fmt: skip
    text = value.strip()
    if match := _DATA_URL.match(text):
        text = text[match.end() :]
    elif text.startswith("data:"):
        raise ServiceError(
            400, ResultCode.INVALID_PARAMETER,
            f"'{name}' is a data URL but not a base64 image (data:image/…;base64,…).",
        )  # fmt: skip
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ServiceError(
            400, ResultCode.INVALID_PARAMETER, f"'{name}' is not valid base64."
        ) from None
    if not data:
        raise ServiceError(400, ResultCode.INVALID_PARAMETER, f"'{name}' is empty.")
    return data
