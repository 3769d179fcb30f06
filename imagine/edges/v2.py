"""TheNextLeg's v2 contract: ``/v2/imagine``, ``/v2/button``, ``/v2/message/{id}`` and the rest
of its surface that a self-hosted service can honestly offer."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from imagine.codes import ResultCode
from imagine.edges.common import (
    MAX_DATA_BODY,
    body,
    flag,
    image_data,
    number,
    string,
    token,
    whole,
)
from imagine.errors import ServiceError
from imagine.jobs import Job, iso
from imagine.keys import SERVICE


def _accepted(job: Job, jobs: list[Job] | None = None) -> web.Response:
    answer: dict[str, Any] = {
        "success": True,
        "messageId": job.id,
        "createdAt": iso(job.created_at),
    }
    if jobs is not None and len(jobs) > 1:
        answer["messageIds"] = [j.id for j in jobs]
    return web.json_response(answer)


async def imagine(request: web.Request) -> web.Response:
    data = await body(request)
    jobs = await request.app[SERVICE].imagine(
        string(data, "msg", required=True, limit=100_000),
        ref=string(data, "ref", limit=100_000),
        webhook=string(data, "webhookOverride", limit=2000),
        ignore_prefilter=flag(data, "ignorePrefilter"),
        token=token(request),
        max_unfinished=whole(data, "maxUnfinished"),
    )
    return _accepted(jobs[0], jobs)


async def blend(request: web.Request) -> web.Response:
    data = await body(request)
    urls = data.get("urls")
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise ServiceError(
            400,
            ResultCode.INVALID_PARAMETER,
            'urls must be a list of 2 to 5 image links, like {"urls": ["https://…/a.png", '
            '"https://…/b.png"]}.',
        )
    jobs = await request.app[SERVICE].blend(
        [string({"url": u}, "url", limit=2000) for u in urls],
        dimensions=string(data, "dimensions", limit=100),
        ref=string(data, "ref", limit=100_000),
        webhook=string(data, "webhookOverride", limit=2000),
        token=token(request),
        max_unfinished=whole(data, "maxUnfinished"),
    )
    return _accepted(jobs[0])


async def button(request: web.Request) -> web.Response:
    """A press; ``prompt`` (Remix), ``mask`` (Vary (Region), base64), ``zoom`` and ``ar``
    (Custom Zoom) as TheNextLeg took them; ``vary`` (strong/subtle) for V1–V4, our own."""
    data = await body(request, MAX_DATA_BODY)
    mask = data.get("mask")
    prompt = data.get("prompt")
    ar = string(data, "ar", limit=20) or None
    job = await request.app[SERVICE].press(
        string(data, "buttonMessageId", required=True, limit=100),
        string(data, "button", required=True, limit=100),
        ref=string(data, "ref", limit=100_000),
        webhook=string(data, "webhookOverride", limit=2000),
        token=token(request),
        prompt=None if prompt is None else string(data, "prompt", limit=4000),
        mask=None if mask in (None, "") else image_data(mask, "mask"),
        zoom=number(data, "zoom", 1.0, 2.0),
        ar=ar,
        vary=string(data, "vary", limit=20).lower() or None,
    )
    return _accepted(job)


async def describe(request: web.Request) -> web.Response:
    """``{url}`` (or ``{base64}``): four prompts, read as ``content`` of the completed message."""
    data = await body(request, MAX_DATA_BODY)
    raw = data.get("base64")
    job = await request.app[SERVICE].describe(
        url=string(data, "url", limit=2000),
        image=None if raw in (None, "") else image_data(raw, "base64"),
        ref=string(data, "ref", limit=100_000),
        webhook=string(data, "webhookOverride", limit=2000),
        token=token(request),
    )
    return _accepted(job)


async def shorten(request: web.Request) -> web.Response:
    data = await body(request)
    job = await request.app[SERVICE].shorten(
        string(data, "prompt", required=True, limit=4000),
        ref=string(data, "ref", limit=100_000),
        webhook=string(data, "webhookOverride", limit=2000),
        token=token(request),
    )
    return _accepted(job)


async def seed(request: web.Request) -> web.Response:
    data = await body(request)
    message_id = string(data, "messageId", required=True, limit=100)
    value = await request.app[SERVICE].seed(message_id, token(request))
    return web.json_response({"success": True, "messageId": message_id, "seed": value})


async def cancel(request: web.Request) -> web.Response:
    """``{messageId}``: stop a queued or running job of this token; it then reads as failed
    with ``content: "CANCELLED"``. 404 for an unknown id, 409 for a job that has finished."""
    data = await body(request)
    message_id = string(data, "messageId", required=True, limit=100).strip()
    if not message_id:
        raise ServiceError(400, None, "'messageId' is empty: send the id of the job to cancel.")
    job = await request.app[SERVICE].cancel(message_id, token(request))
    return web.json_response({"success": True, "messageId": job.id, "status": job.status.value})


async def is_this_naughty(request: web.Request) -> web.Response:
    data = await body(request)
    phrase = request.app[SERVICE].is_naughty(string(data, "msg", required=True, limit=100_000))
    return web.json_response({"isNaughty": phrase is not None, "phrase": phrase})


async def settings(request: web.Request) -> web.Response:
    """GET: this token's defaults; POST ``{settingsToggle}``: change one."""
    service = request.app[SERVICE]
    if request.method == "POST":
        data = await body(request)
        toggle = string(data, "settingsToggle", required=True, limit=100)
        current = await service.toggle_default(token(request), toggle)
    else:
        current = await service.token_defaults(token(request))
    return web.json_response({"success": True, "settings": current})


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
        await request.app[SERVICE].message(request.match_info["id"], expire, token(request))
    )


async def info(request: web.Request) -> web.Response:
    """GET, or POST as TheNextLeg's own Python client sends it (a body is optional)."""
    user = request.query.get("user") or None
    if request.method == "POST" and request.body_exists:
        data = await body(request)
        user = string(data, "user", limit=200) or user
    return web.json_response(await request.app[SERVICE].info(user, token(request)))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v2/imagine", imagine)
    app.router.add_post("/v2/button", button)
    app.router.add_post("/v2/blend", blend)
    app.router.add_post("/v2/describe", describe)
    app.router.add_post("/v2/shorten", shorten)
    app.router.add_post("/v2/seed", seed)
    app.router.add_post("/v2/cancel", cancel)
    app.router.add_post("/v2/is-this-naughty", is_this_naughty)
    app.router.add_get("/v2/settings", settings)
    app.router.add_post("/v2/settings", settings)
    app.router.add_get("/v2/message/{id}", message)
    app.router.add_get("/v2/info", info)
    app.router.add_post("/v2/info", info)
