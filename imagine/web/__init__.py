"""The web side the service serves itself: the Vary (Region) editor, each member's gallery
(both behind signed links), the operator's dashboard and ``/metrics`` (behind
IMAGINE_ADMIN_TOKEN). Jinja2 templates and plain JavaScript in the package: no build step, no
CDN, works offline."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from imagine.edges.common import Handler
from imagine.keys import SERVICE, SETTINGS
from imagine.store import StoreError
from imagine.web import admin, api, editor, gallery
from imagine.web.keys import WEB, WebState
from imagine.web.metrics import Metrics
from imagine.web.security import pages, skip_api_auth
from imagine.web.signing import Signer, load_secret

HERE = Path(__file__).parent

__all__ = ["add_web", "measure", "pages", "skip_api_auth"]


def add_web(app: web.Application) -> None:
    """The pages, their static files and the bot's two calls, on ``app``."""
    app[WEB] = WebState(Metrics())
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    versions = static_versions()
    # versioned URLs (?v=<hash>): a new release's files are never read from a stale cache
    env.globals["static"] = lambda name: f"/web/static/{name}?v={versions[name]}"
    app.router.add_get("/web/static/{name}", static_file)
    api.add_routes(app)
    gallery.add_routes(app)
    editor.add_routes(app)
    admin.add_routes(app)
    app.cleanup_ctx.append(_web_ctx)


@web.middleware
async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
    """API latency per route, for /metrics (outside the errors middleware: it sees the status
    each answer went out with)."""
    return await request.app[WEB].metrics.measure(request, handler)


async def _web_ctx(app: web.Application) -> AsyncIterator[None]:
    """After the store opened (so a data folder that cannot be used is said as the store says
    it): the links' secret, and the metrics' starting point."""
    settings = app[SETTINGS]
    try:
        secret = load_secret(settings.web_secret, settings.data_dir)
    except OSError as exc:
        raise StoreError(
            f"Cannot keep the web pages' secret in {settings.data_dir}: {exc.strerror or exc}. "
            "Set IMAGINE_WEB_SECRET, or make the data folder writable."
        ) from exc
    app[WEB]._signer = Signer(secret)
    await app[WEB].metrics.start(app[SERVICE].store)
    yield


STATIC_TYPES = {"css": "text/css", "js": "text/javascript"}


@functools.cache
def static_versions() -> dict[str, str]:
    """Each shipped file's name → a hash of its content (read once)."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        for path in (HERE / "static").iterdir()
        if path.suffix[1:] in STATIC_TYPES
    }


async def static_file(request: web.Request) -> web.StreamResponse:
    """The pages' own CSS and JavaScript (only the files shipped in imagine/web/static)."""
    name = request.match_info["name"]
    if name not in static_versions():
        raise web.HTTPNotFound()
    path = HERE / "static" / name
    return web.FileResponse(path, headers={"Content-Type": STATIC_TYPES[path.suffix[1:]]})
