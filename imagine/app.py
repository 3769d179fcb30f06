"""The HTTP application: both contract edges (:mod:`imagine.edges`) over one
:class:`ImagineService`, the images, health and the OpenAPI document.

Domain errors become HTTP responses only in the edges; every error is JSON with a sentence.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections.abc import AsyncIterator

from aiohttp import web

from imagine.edges import v2
from imagine.edges.common import MAX_DATA_BODY, auth, cors, errors
from imagine.edges.mj import routes as mj
from imagine.engines import create_engine
from imagine.engines.base import Engine
from imagine.keys import ENGINE, SERVICE, SETTINGS
from imagine.openapi import spec
from imagine.prefilter import Prefilter
from imagine.previews import image_key
from imagine.service import ImagineService, ServiceError
from imagine.settings import Settings
from imagine.storage import check_key, open_storage
from imagine.store import StoreError, open_store
from imagine.web import add_web, measure, pages, skip_api_auth

log = logging.getLogger(__name__)

_IMAGE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$|^[a-z0-9-]{1,32}\.(png|webp|jpg)$")


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
    # the largest body any route takes; each route reads no more than its own limit
    app = web.Application(
        middlewares=[cors, measure, errors, skip_api_auth(auth), pages],
        client_max_size=MAX_DATA_BODY,
    )
    app[SETTINGS] = settings
    app[ENGINE] = engine if engine is not None else create_engine(settings)
    app.cleanup_ctx.append(_service_ctx)
    v2.add_routes(app)
    mj.add_routes(app)
    app.router.add_get("/health", health)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/images/{id}/{name}", image)
    add_web(app)  # the pages, /admin and /metrics (imagine.web)
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
