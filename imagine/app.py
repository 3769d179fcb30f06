"""The HTTP edge: TheNextLeg v2's Imagine API over :class:`ImagineService`.

Domain errors become HTTP responses here and only here; every error is JSON with a sentence.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from imagine.codes import ResultCode
from imagine.engines import create_engine
from imagine.engines.base import Engine
from imagine.jobs import iso
from imagine.keys import CLOSE_CONNECTION, ENGINE, SERVICE, SETTINGS
from imagine.openapi import spec
from imagine.prefilter import Prefilter
from imagine.runner import image_key
from imagine.service import ImagineService, ServiceError
from imagine.settings import Settings
from imagine.storage import StorageError, check_key, open_storage
from imagine.store import StoreError, StoreUnavailable, open_store

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
OPEN_PATHS = ("/health",)
_IMAGE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$|^[a-z0-9-]{1,32}\.(png|webp|jpg)$")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str, code: str | None = None, **extra: Any) -> web.Response:
    body: dict[str, Any] = {"success": False, "msg": message}
    if code:
        body["code"] = code
    body.update(extra)
    return web.json_response(body, status=status)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ServiceError as exc:
        response = _error(
            exc.status, exc.message, exc.code.value if exc.code else None, **exc.extra
        )
        if "retryAfter" in exc.extra:
            response.headers["Retry-After"] = str(exc.extra["retryAfter"])
        if request.get(CLOSE_CONNECTION):
            response.force_close()
        return response
    except web.HTTPRequestEntityTooLarge:
        return _error(413, f"The request body is too large; the limit is {MAX_BODY // 1024} KiB.")
    except StoreError as exc:  # a read that failed: the database is locked, gone or damaged
        log.error("the job database failed on %s %s: %s", request.method, request.path, exc)
        what = "reached" if isinstance(exc, StoreUnavailable) else "read"
        response = _error(
            503, f"The job database cannot be {what} right now. Try again in a few seconds."
        )
        response.headers["Retry-After"] = "5"
        return response
    except StorageError as exc:
        log.error("the image storage failed on %s %s: %s", request.method, request.path, exc)
        response = _error(503, "The image storage cannot be read right now. Try again shortly.")
        response.headers["Retry-After"] = "5"
        return response
    except web.HTTPNotFound:
        return _error(404, f"There is no endpoint at {request.path}.")
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        response = _error(405, f"{request.method} is not allowed on {request.path}; use {allowed}.")
        response.headers["Allow"] = allowed
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, exc.text or exc.reason)
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _error(
            500, "Something went wrong on our side; it is in the service's log.", "INTERNAL_ERROR"
        )


@web.middleware
async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    tokens = request.app[SETTINGS].api_tokens
    if not tokens or request.path in OPEN_PATHS or request.path.startswith("/images/"):
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    # compare_digest against every token, so timing tells nothing about which one nearly matched
    matched = [hmac.compare_digest(given.strip().encode(), token.encode()) for token in tokens]
    if scheme.lower() != "bearer" or not any(matched):
        return _error(
            401, "Unauthorized: send the header 'Authorization: Bearer <token>' with a valid token."
        )
    return await handler(request)


def _token(request: web.Request) -> str | None:
    """The API token the request came with: whose jobs it may see. Without IMAGINE_API_TOKENS
    every client is the same one tenant, whatever header it sends."""
    if not request.app[SETTINGS].api_tokens:
        return None
    header = request.headers.get("Authorization", "")
    return header.partition(" ")[2].strip() or None


ENCODINGS = ("gzip", "deflate", "br", "zstd", "identity")


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.body_exists:
        raise ServiceError(400, None, "The request has no body: send a JSON object.")
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


def _string(data: dict[str, Any], name: str, *, required: bool = False, limit: int = 4000) -> str:
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


def _whole(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000:
        raise ServiceError(400, None, f"'{name}' must be a whole number from 1 to 1000000.")
    return value


def _flag(data: dict[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", ""):
        return value.strip().lower() in ("true", "1")
    raise ServiceError(
        400, None, f'\'{name}\' must be true or false (a boolean or the string "true"/"false").'
    )


async def imagine(request: web.Request) -> web.Response:
    data = await _body(request)
    jobs = await request.app[SERVICE].imagine(
        _string(data, "msg", required=True, limit=100_000),
        ref=_string(data, "ref", limit=100_000),
        webhook=_string(data, "webhookOverride", limit=2000),
        ignore_prefilter=_flag(data, "ignorePrefilter"),
        token=_token(request),
        max_unfinished=_whole(data, "maxUnfinished"),
    )
    body: dict[str, Any] = {
        "success": True,
        "messageId": jobs[0].id,
        "createdAt": iso(jobs[0].created_at),
    }
    if len(jobs) > 1:
        body["messageIds"] = [job.id for job in jobs]
    return web.json_response(body)


async def blend(request: web.Request) -> web.Response:
    data = await _body(request)
    urls = data.get("urls")
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise ServiceError(
            400,
            ResultCode.INVALID_PARAMETER,
            'urls must be a list of 2 to 5 image links, like {"urls": ["https://…/a.png", '
            '"https://…/b.png"]}.',
        )
    jobs = await request.app[SERVICE].blend(
        [_string({"url": u}, "url", limit=2000) for u in urls],
        dimensions=_string(data, "dimensions", limit=100),
        ref=_string(data, "ref", limit=100_000),
        webhook=_string(data, "webhookOverride", limit=2000),
        token=_token(request),
        max_unfinished=_whole(data, "maxUnfinished"),
    )
    return web.json_response(
        {"success": True, "messageId": jobs[0].id, "createdAt": iso(jobs[0].created_at)}
    )


async def button(request: web.Request) -> web.Response:
    data = await _body(request)
    job = await request.app[SERVICE].press(
        _string(data, "buttonMessageId", required=True, limit=100),
        _string(data, "button", required=True, limit=100),
        ref=_string(data, "ref", limit=100_000),
        webhook=_string(data, "webhookOverride", limit=2000),
        token=_token(request),
    )
    return web.json_response(
        {"success": True, "messageId": job.id, "createdAt": iso(job.created_at)}
    )


async def message(request: web.Request) -> web.Response:
    raw = request.query.get("expireMins", "12")
    try:
        expire = float(raw)
    except ValueError:
        expire = -1.0
    if not 0 <= expire <= 100_000:  # also refuses nan
        raise ServiceError(
            400, None, f"expireMins must be a number of minutes from 0 to 100000, got {raw!r}."
        )
    return web.json_response(
        await request.app[SERVICE].message(request.match_info["id"], expire, _token(request))
    )


async def info(request: web.Request) -> web.Response:
    user = request.query.get("user") or None
    return web.json_response(await request.app[SERVICE].info(user, _token(request)))


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(spec(request.app[SETTINGS].base_url))


async def image(request: web.Request) -> web.StreamResponse:
    job_id, name = request.match_info["id"], request.match_info["name"]
    if not _IMAGE_NAME.fullmatch(job_id) or not _IMAGE_NAME.fullmatch(name) or "." not in name:
        raise ServiceError(404, None, "No such image.")
    storage = request.app[SERVICE].storage
    key = image_key(job_id, name)
    try:
        check_key(key)
    except ValueError:
        raise ServiceError(404, None, "No such image.") from None
    # Names are never reused for other content, so the file can be cached forever.
    headers = {"Cache-Control": "public, max-age=31536000, immutable"}
    path = storage.local_path(key)
    if path is not None:  # on disk: the kernel sends the file
        if not path.is_file():
            raise ServiceError(404, None, "No such image.")
        return web.FileResponse(path, headers=headers)
    # in a bucket: served through this API (no bucket needs to be public, and the URL stays the
    # same whichever API instance a client asks); a key's bytes never change, so a tag of the
    # key is a strong ETag
    headers["ETag"] = f'"{hashlib.sha256(key.encode()).hexdigest()[:32]}"'
    if request.headers.get("If-None-Match") == headers["ETag"]:
        return web.Response(status=304, headers=headers)
    data = await storage.get(key)
    if data is None:
        raise ServiceError(404, None, "No such image.")
    kind = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}[name.rsplit(".", 1)[1]]
    return web.Response(body=data, content_type=kind, headers=headers)


def create_app(settings: Settings, engine: Engine | None = None) -> web.Application:
    """The application; the engine is started and the store opened in its cleanup context."""
    app = web.Application(middlewares=[errors, auth], client_max_size=MAX_BODY)
    app[SETTINGS] = settings
    app[ENGINE] = engine if engine is not None else create_engine(settings)
    app.cleanup_ctx.append(_service_ctx)
    app.router.add_post("/v2/imagine", imagine)
    app.router.add_post("/v2/button", button)
    app.router.add_post("/v2/blend", blend)
    app.router.add_get("/v2/message/{id}", message)
    app.router.add_get("/v2/info", info)
    app.router.add_get("/health", health)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/images/{id}/{name}", image)
    return app


async def _service_ctx(app: web.Application) -> AsyncIterator[None]:
    async with running_service(app[SETTINGS], app[ENGINE]) as service:
        app[SERVICE] = service
        yield


@contextlib.asynccontextmanager
async def running_service(settings: Settings, engine: Engine) -> AsyncIterator[ImagineService]:
    """The service with its store open, engine started and workers running (no HTTP)."""
    prefilter = Prefilter.load(settings.banned_words_file)
    store = await open_store(settings)
    try:
        storage = open_storage(
            settings.storage_url, settings.data_dir, settings.environ, settings.s3_endpoint
        )
    except ValueError as exc:
        await store.close()
        raise StoreError(str(exc)) from None
    try:
        await storage.check()
        if settings.database_url and storage.local_path("images/x/y.png") is not None:
            log.warning(
                "the jobs are in PostgreSQL but the images in this machine's folder %s: fine for "
                "one process, but API instances and workers elsewhere will not find each "
                "other's images; set IMAGINE_STORAGE_URL (s3://…) for a distributed deployment",
                settings.data_dir,
            )
        renders = settings.workers != 0
        try:
            if renders:  # an API instance alone never loads the model
                await engine.start()
        except BaseException:
            await engine.close()  # a half-started engine may hold a session or a thread
            raise
        caps = engine.capabilities
        if caps.is_placeholder:
            log.warning(
                "engine: placeholder — images are patterns, not AI renders (set IMAGINE_ENGINE)"
            )
        else:
            log.info("engine: %s", caps.name)
        service = ImagineService(settings, engine, store, prefilter, storage)
        await service.start()
        try:
            yield service
        finally:
            await service.close()
            await engine.close()
    finally:
        await storage.close()
        await store.close()
