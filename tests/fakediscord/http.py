"""The plumbing every REST route shares: request bodies (JSON or multipart), Discord-shaped JSON
responses, the call log, injected failures and the bot-token check."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aiohttp import BodyPartReader, web

from tests.fakediscord.records import JSON, Upload
from tests.fakediscord.rules import DiscordError
from tests.fakediscord.state import World

log = logging.getLogger(__name__)
API = "/api/v10"
FILE_FIELD = re.compile(r"^files\[(\d+)\]$")
# these authenticate with the interaction token in the path, not with the bot token
TOKEN_ROUTES = re.compile(r"^/(interactions/\d+/[^/]+/callback|webhooks/\d+/[^/]+)")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BODY = web.RequestKey("body", object)
UPLOADS = web.RequestKey("uploads", list[Upload])


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    # exactly "application/json": discord.py's json_or_text does not parse it with a charset suffix
    return web.Response(
        status=status,
        body=json.dumps(data).encode(),
        content_type="application/json",
        headers=headers,
    )


def no_content() -> web.Response:
    return web.Response(status=204)


def body_of(request: web.Request) -> JSON:
    """The JSON object sent (a message, a callback, a command ...)."""
    body = request[BODY]
    if not isinstance(body, dict):
        raise DiscordError(
            400,
            50035,
            "Invalid Form Body",
            {
                "_errors": [
                    {
                        "code": "DICT_TYPE_CONVERT",
                        "message": "Only dictionaries may be used in a DictType",
                    }
                ]
            },
        )
    return body


def list_body(request: web.Request) -> list[Any]:
    body = request[BODY]
    if not isinstance(body, list):
        raise DiscordError(
            400,
            50035,
            "Invalid Form Body",
            {"_errors": [{"code": "BASE_TYPE_ARRAY", "message": "Must be an array."}]},
        )
    return body


def uploads_of(request: web.Request) -> list[Upload]:
    return request[UPLOADS]


@dataclass
class InjectedFailure:
    method: str
    pattern: re.Pattern[str]
    status: int
    remaining: int
    retry_after: float | None

    def response(self) -> web.Response:
        if self.status == 429:
            retry_after = 0.05 if self.retry_after is None else self.retry_after
            # discord.py treats a 429 without a Via header as a Cloudflare ban and gives up
            headers = {
                "Via": "1.1 google",
                "Retry-After": str(max(1, round(retry_after))),
                "X-RateLimit-Scope": "user",
            }
            body = {
                "message": "You are being rate limited.",
                "retry_after": retry_after,
                "global": False,
            }
            return json_response(body, 429, headers)
        reason = HTTPStatus(self.status).phrase if self.status >= 500 else "Injected Failure"
        return json_response({"message": f"{self.status}: {reason}", "code": 0}, self.status)


class Plumbing:
    """An aiohttp middleware holding the call log and the failure plan."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.failures: list[InjectedFailure] = []

    def fail_next(
        self, method: str, path_regex: str, status: int, count: int, retry_after: float | None
    ) -> None:
        self.failures.append(
            InjectedFailure(method.upper(), re.compile(path_regex), status, count, retry_after)
        )

    def _injected(self, method: str, path: str) -> web.Response | None:
        for failure in self.failures:
            if (
                failure.remaining > 0
                and failure.method in ("*", method)
                and failure.pattern.search(path)
            ):
                failure.remaining -= 1
                return failure.response()
        return None

    def _check_token(self, request: web.Request, path: str) -> None:
        if TOKEN_ROUTES.match(path):
            return
        if request.headers.get("Authorization") != f"Bot {self.world.token}":
            raise DiscordError(401, 0, "401: Unauthorized")

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(API):
            return await handler(request)
        path = request.path.removeprefix(API)
        call: JSON = {
            "method": request.method,
            "path": path,
            "query": dict(request.query),
            "json": None,
            "files": [],
            "status": None,
            "time": time.monotonic(),
            "injected": False,
        }
        self.world.calls.append(call)
        try:
            response = self._injected(request.method, path)
            call["injected"] = response is not None
            if response is None:
                body, uploads = await _read_body(request)
                call["json"] = body
                call["files"] = [{"filename": u.filename, "size": len(u.data)} for u in uploads]
                request[BODY], request[UPLOADS] = body, uploads
                self._check_token(request, path)
                response = await handler(request)  # type: ignore[assignment]
        except DiscordError as error:
            self.world.record_error(request.method, path, error)
            response = json_response(error.body(), error.status)
        except Exception as exc:
            # a bug in the fake must fail the test, not pass as a 500 that discord.py retries
            log.exception("fake Discord failed on %s %s", request.method, path)
            crash = DiscordError(500, 0, f"the fake Discord crashed: {exc!r}")
            self.world.record_error(request.method, path, crash)
            response = json_response(crash.body(), 500)
        assert response is not None
        call["status"] = response.status
        if (
            isinstance(response, web.Response)
            and response.body
            and response.content_type == "application/json"
        ):
            call["response"] = json.loads(response.body)  # type: ignore[arg-type]
        return response


async def _read_body(request: web.Request) -> tuple[Any, list[Upload]]:
    if not request.body_exists:
        return {}, []
    try:
        if request.content_type == "multipart/form-data":
            return await _read_multipart(request)
        if request.content_type == "application/json":
            return json.loads(await request.read() or b"{}"), []
    except (ValueError, UnicodeDecodeError):
        raise DiscordError(400, 50109, "The request body contains invalid JSON.") from None
    return {}, []


async def _read_multipart(request: web.Request) -> tuple[JSON, list[Upload]]:
    body: JSON = {}
    uploads: list[Upload] = []
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader):  # pragma: no cover - nested multipart
            continue
        if part.name == "payload_json":
            body = json.loads(await part.text())
            continue
        match = FILE_FIELD.match(part.name or "")
        if match is None:
            continue
        data = bytes(await part.read(decode=False))
        content_type = part.headers.get("Content-Type", "application/octet-stream")
        uploads.append(Upload(int(match.group(1)), part.filename or "file", data, content_type))
    return body, uploads
