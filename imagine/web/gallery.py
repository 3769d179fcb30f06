"""A member's gallery: their own finished images, newest first, paged, with text and date
filters; each with its prompt, parameters, seeds and model, a full-size view, download, copy
prompt, and delete (the images leave the storage and the job the gallery)."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from yarl import URL

from imagine.errors import ServiceError
from imagine.jobs import Job
from imagine.keys import SERVICE
from imagine.messages import completed
from imagine.web import queries
from imagine.web.keys import WEB
from imagine.web.security import check_csrf, csrf_token, problem
from imagine.web.signing import BadLink, Link

log = logging.getLogger(__name__)

AGAIN = {"gallery": "Run /gallery in Discord again for a new link.",
         "editor": "Press Vary (Region) under the image in Discord again for a new link."}  # fmt: skip


def verified(request: web.Request, purpose: str) -> tuple[str, Link] | web.Response:
    """The page's link, or the page that says why it does not work and what to do."""
    signed = request.match_info["token"]
    try:
        return signed, request.app[WEB].signer.verify(signed, purpose)
    except BadLink as exc:
        title = "This link has expired" if exc.expired else "This link does not work"
        return problem(request, 403, title, str(exc), AGAIN[purpose])


def _day(raw: str, name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ServiceError(400, None, f"The {name} date must look like 2025-01-31.") from None


def card(job: Job) -> dict[str, Any]:
    # paths, not absolute URLs: the page comes from this service, whatever name it was reached by
    message = completed(job, "")
    settings = job.result.get("settings") or {}
    return {
        "id": job.id,
        "prompt": job.content,
        "image": message["imageUrl"],
        "tiles": message["imageUrls"],
        "seeds": message["seeds"],
        "model": settings.get("model") or settings.get("engine") or "default",
        "engine": settings.get("engine", ""),
        "size": f"{settings['width']}×{settings['height']}" if "width" in settings else "",
        "steps": settings.get("steps"),
        "action": job.action,
        "date": job.created_at.strftime("%Y-%m-%d %H:%M UTC"),
    }


async def gallery_page(request: web.Request) -> web.StreamResponse:
    found = verified(request, "gallery")
    if isinstance(found, web.Response):
        return found
    signed, link = found
    q = request.query
    text = q.get("q", "").strip()[:200]
    try:
        page = max(1, min(int(q.get("page", "1") or 1), 10_000))
    except ValueError:
        page = 1
    query = queries.GalleryQuery(
        text, _day(q.get("from", ""), "from"), _day(q.get("to", ""), "to"), page
    )
    jobs, more = await queries.gallery(request.app[SERVICE].store, link.owner, query)
    here = f"/web/gallery/{signed}"

    def page_url(number: int) -> str:
        params = {"q": text, "from": q.get("from", ""), "to": q.get("to", ""), "page": str(number)}
        return str(URL(here).with_query({k: v for k, v in params.items() if v}))

    return aiohttp_jinja2.render_template(
        "gallery.html",
        request,
        {
            "cards": [card(job) for job in jobs],
            "here": here,
            "query": {"q": text, "from": q.get("from", ""), "to": q.get("to", "")},
            "page": page,
            "previous": page_url(page - 1) if page > 1 else None,
            "next": page_url(page + 1) if more else None,
            "csrf": csrf_token(request, signed),
            "notice": q.get("deleted") and "Deleted. Links to it posted in Discord no longer work.",
            "expires": int(link.expires),
        },
    )


async def delete(request: web.Request) -> web.StreamResponse:
    found = verified(request, "gallery")
    if isinstance(found, web.Response):
        return found
    signed, link = found
    form = await request.post()
    check_csrf(request, signed, str(form.get("csrf", "")))
    job_id = request.match_info["job"]
    service = request.app[SERVICE]
    job = await queries.own_job(service.store, link.owner, job_id)
    if job is None or not job.status.finished:
        raise ServiceError(404, None, "That image is not in your gallery (deleted already?).")
    removed = await service.delete_finished(job)
    log.info("gallery: user %s deleted job %s (%d file(s))", link.user, job.id, removed)
    raise web.HTTPSeeOther(f"/web/gallery/{signed}?deleted=1")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/web/gallery/{token}", gallery_page)
    app.router.add_post("/web/gallery/{token}/delete/{job}", delete)
