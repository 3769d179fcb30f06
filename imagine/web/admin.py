"""The operator's dashboard, ``/admin``: the queue, the workers, the last hour, recent failures
and the webhook outbox, and cancelling a job. Behind IMAGINE_ADMIN_TOKEN, sent as a bearer token
or typed once on the login page (then an HttpOnly, SameSite=Strict cookie that expires)."""

from __future__ import annotations

import hmac
import logging
import time

import aiohttp_jinja2
from aiohttp import web

from imagine.errors import ServiceError
from imagine.keys import SERVICE, SETTINGS
from imagine.web import queries
from imagine.web.keys import WEB
from imagine.web.metrics import CONTENT_TYPE_LATEST, allowed
from imagine.web.security import check_csrf, csrf_token, problem, token_for

log = logging.getLogger(__name__)

COOKIE = "imagine_admin"
SESSION = 12 * 3600


def _session(request: web.Request, expires: int) -> str:
    token = request.app[SETTINGS].admin_token
    return f"{expires}.{request.app[WEB].signer.mac('admin', token, str(expires))}"


def signed_in(request: web.Request) -> str | None:
    """What the operator's requests are bound to (their session cookie, or "bearer"), or None."""
    admin_token = request.app[SETTINGS].admin_token
    if not admin_token:
        return None
    if allowed(request, admin_token):
        return "bearer"
    cookie = request.cookies.get(COOKIE, "")
    expires, _, _ = cookie.partition(".")
    if not expires.isdigit() or int(expires) < time.time():
        return None
    if hmac.compare_digest(cookie.encode(), _session(request, int(expires)).encode()):
        return cookie
    return None


def _off(request: web.Request) -> web.Response:
    return problem(
        request, 404, "The dashboard is off",
        "The dashboard and /metrics need an operator token.",
        "Set IMAGINE_ADMIN_TOKEN in the service's environment and restart it.",
    )  # fmt: skip


def _login(request: web.Request, status: int = 401, error: str = "") -> web.Response:
    return aiohttp_jinja2.render_template("login.html", request, {"error": error}, status=status)


async def dashboard(request: web.Request) -> web.StreamResponse:
    if not request.app[SETTINGS].admin_token:
        return _off(request)
    session = signed_in(request)
    if session is None:
        return _login(request)
    service = request.app[SERVICE]
    view = await queries.overview(service.store)
    return aiohttp_jinja2.render_template(
        "admin.html",
        request,
        {
            "o": view,
            # what each renders, from the jobs (its heartbeat may be a few seconds old)
            "rendering": {worker: job.id for worker, job in view.running if worker},
            "user": lambda owner: owner.partition(":")[2] or "(no user)",
            "csrf": csrf_token(request, session),
            "engine": service.capabilities.name,
            "now": time.time(),
            "notice": {"cancelled": "Cancelled."}.get(request.query.get("done", ""), ""),
        },
    )


async def login(request: web.Request) -> web.StreamResponse:
    admin_token = request.app[SETTINGS].admin_token
    if not admin_token:
        return _off(request)
    form = await request.post()
    given = str(form.get("token", ""))
    if not hmac.compare_digest(given.encode(), admin_token.encode()):
        log.warning("admin: a wrong token was typed on the login page")
        return _login(request, 401, "That is not the operator token.")
    response = web.HTTPSeeOther("/admin")
    expires = int(time.time()) + SESSION
    response.set_cookie(
        COOKIE, _session(request, expires), max_age=SESSION, httponly=True, samesite="Strict",
        secure=request.app[SETTINGS].base_url.startswith("https://"), path="/admin",
    )  # fmt: skip
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    response = web.HTTPSeeOther("/admin")
    response.del_cookie(COOKIE, path="/admin")
    raise response


async def cancel(request: web.Request) -> web.StreamResponse:
    session = signed_in(request)
    if session is None:
        return _login(request)
    form = await request.post()
    if session != "bearer":  # a browser sends a cookie by itself, never a bearer header
        check_csrf(request, session, str(form.get("csrf", "")))
    service = request.app[SERVICE]
    job = await service.store.get(request.match_info["job"])
    if job is None:
        raise ServiceError(404, None, "There is no such job.")
    await service.cancel(job.id, token_for(request, job.owner.partition(":")[0]))
    log.info("admin: cancelled job %s", job.id)
    raise web.HTTPSeeOther("/admin?done=cancelled")


async def metrics(request: web.Request) -> web.Response:
    admin_token = request.app[SETTINGS].admin_token
    if not allowed(request, admin_token):
        text = (
            "Unauthorized: send 'Authorization: Bearer <IMAGINE_ADMIN_TOKEN>'.\n"
            if admin_token
            else "Metrics are off: set IMAGINE_ADMIN_TOKEN.\n"
        )
        return web.Response(
            status=401, text=text, headers={"WWW-Authenticate": 'Bearer realm="metrics"'}
        )
    service = request.app[SERVICE]
    data = await request.app[WEB].metrics.scrape(service.store, service.capabilities.name)
    return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin", dashboard)
    app.router.add_post("/admin/login", login)
    app.router.add_post("/admin/logout", logout)
    app.router.add_post("/admin/cancel/{job}", cancel)
    app.router.add_get("/metrics", metrics)
