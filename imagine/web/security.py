"""What every page shares: its headers (a strict Content Security Policy, no referrer: links
carry their signature), CSRF tokens, the same-origin check, and errors as pages, never JSON or a
traceback."""

from __future__ import annotations

import hmac
import logging
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web
from aiohttp.typedefs import Middleware

from imagine.edges.common import Handler
from imagine.errors import ServiceError
from imagine.keys import SETTINGS
from imagine.storage import StorageError
from imagine.store import StoreError
from imagine.web.keys import WEB

log = logging.getLogger(__name__)

PAGE_PREFIXES = ("/web/gallery/", "/web/editor/", "/web/static/", "/admin")
"""Pages: let in by their signed link or the operator's token, never by an API token."""
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def is_page(path: str) -> bool:
    return path.startswith(PAGE_PREFIXES) or path == "/metrics"


def skip_api_auth(auth: Middleware) -> Middleware:
    """The API's token check, for everything but the pages (they check their own access)."""

    @web.middleware
    async def api_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if is_page(request.path):
            return await handler(request)
        return await auth(request, handler)

    return api_auth


def problem(
    request: web.Request, status: int, title: str, message: str, advice: str = ""
) -> web.Response:
    """A page that says what went wrong and what to do."""
    return aiohttp_jinja2.render_template(
        "problem.html",
        request,
        {"title": title, "message": message, "advice": advice},
        status=status,
    )


@web.middleware
async def pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_page(request.path) or request.path == "/metrics":
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        what = "There is no such page." if exc.status == 404 else (exc.text or exc.reason)
        response = problem(request, exc.status, exc.reason, what)
        if isinstance(exc, web.HTTPMethodNotAllowed):
            response.headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
    except ServiceError as exc:
        response = problem(request, exc.status, "That did not work", exc.message)
    except (StoreError, StorageError) as exc:
        log.error("a page failed on %s %s: %s", request.method, request.path, exc)
        response = problem(
            request, 503, "Not available", "The service cannot read its jobs or images right "
            "now.", "Try again in a few seconds.",
        )  # fmt: skip
    except Exception:
        log.exception("unexpected error on page %s %s", request.method, request.path)
        response = problem(
            request, 500, "Something went wrong", "Something went wrong on our side; it is in "
            "the service's log.", "Try again, or tell the server's operator.",
        )  # fmt: skip
    response.headers.update(HEADERS)
    if request.path.startswith("/web/static/") and response.status == 200:
        # the page names them with a hash of their content (?v=…): a new file, a new URL
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


def csrf_token(request: web.Request, bound_to: str) -> str:
    """The CSRF token of a page: a tag of what the page is bound to (its link, or the
    operator's session), so a token for one page or session is worthless on another."""
    return request.app[WEB].signer.mac("csrf", bound_to)


def check_csrf(request: web.Request, bound_to: str, given: str) -> None:
    """Refuse a state-changing request that another site's page could have sent: it must carry
    this page's CSRF token and, when the browser names one, come from this origin."""
    if not hmac.compare_digest(given.encode(), csrf_token(request, bound_to).encode()):
        raise ServiceError(
            403, None, "This form has expired or did not come from this page. Reload the page "
            "and try again.",
        )  # fmt: skip
    origin = request.headers.get("Origin", "")
    if origin and origin != "null" and not same_origin(request, origin):
        raise ServiceError(403, None, "This request came from another site and was refused.")


def token_for(request: web.Request, scope: str) -> str | None:
    """The API token whose scope this is (None: the one tenant of a service without tokens)."""
    from imagine.limits import token_scope

    tokens = request.app[SETTINGS].api_tokens
    found = next((t for t in tokens if token_scope(t) == scope), None)
    if found is None and (tokens or scope != token_scope(None)):
        raise ServiceError(
            403, None, "The API token this link was made with is no longer configured."
        )
    return found


def same_origin(request: web.Request, origin: str) -> bool:
    theirs = urlsplit(origin)
    ours = {(request.scheme, request.host)}
    base = request.app[SETTINGS].base_url
    public = urlsplit(base)
    ours.add((public.scheme, public.netloc))
    return (theirs.scheme, theirs.netloc) in ours
