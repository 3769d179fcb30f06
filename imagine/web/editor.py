"""The Vary (Region) editor: the image, a brush, a lasso and a rectangle to mark what to repaint,
undo and clear, and the prompt (Remix). Its submit is the very press ``/v2/button`` makes with a
``mask``: one job, charged to the member, which the bot posts in the channel (``/web/api/inbox``)."""

from __future__ import annotations

import json
import logging

import aiohttp_jinja2
from aiohttp import web

from imagine.edges.common import MAX_DATA_BODY, body, image_data, string
from imagine.errors import ServiceError
from imagine.keys import SERVICE
from imagine.messages import completed
from imagine.web.gallery import verified
from imagine.web.security import check_csrf, csrf_token, token_for

log = logging.getLogger(__name__)

BUTTON = "Vary (Region)"


async def editor_page(request: web.Request) -> web.StreamResponse:
    found = verified(request, "editor")
    if isinstance(found, web.Response):
        return found
    signed, link = found
    parent = await request.app[SERVICE].store.by_button_message_id(link.job)
    # any member may vary any result they see in Discord (a press is charged to the presser),
    # so the image need only be of this link's API token
    if parent is None or parent.owner.partition(":")[0] != link.scope:
        raise ServiceError(404, None, "This image is no longer stored (it was deleted).")
    message = completed(parent, "")  # a path: the page comes from here
    return aiohttp_jinja2.render_template(
        "editor.html",
        request,
        {
            "image": message["imageUrl"],
            "prompt": parent.content,
            "csrf": csrf_token(request, signed),
            "submit": f"/web/editor/{signed}",
        },
    )


async def submit(request: web.Request) -> web.Response:
    """JSON in (``mask`` as a PNG data URL, ``prompt``, ``csrf``), JSON out: ``{ok, message}``."""
    found = verified(request, "editor")
    if isinstance(found, web.Response):
        return web.json_response(
            {"ok": False, "message": "This link has expired or is not valid: press Vary (Region) "
             "in Discord again for a new one."}, status=403,
        )  # fmt: skip
    signed, link = found
    try:
        data = await body(request, MAX_DATA_BODY)
        check_csrf(request, signed, string(data, "csrf", limit=200))
        mask = image_data(data.get("mask"), "mask")
        prompt = string(data, "prompt", limit=4000).strip()
        ref = json.dumps({
            "user": link.user, "guild": link.guild, "channel": link.channel, "via": "web",
            "reply": link.message,
        })  # fmt: skip
        job = await request.app[SERVICE].press(
            link.job, BUTTON, ref=ref, token=token_for(request, link.scope),
            prompt=prompt or None, mask=mask,
        )  # fmt: skip
    except ServiceError as exc:
        return web.json_response({"ok": False, "message": exc.message}, status=exc.status)
    except web.HTTPRequestEntityTooLarge:
        return web.json_response({"ok": False, "message": "The mask is too large."}, status=413)
    log.info("editor: user %s sent %s on %s as job %s", link.user, BUTTON, link.job, job.id)
    return web.json_response({
        "ok": True, "messageId": job.id,
        "message": "Sent! Your result will appear in the Discord channel in a moment.",
    })  # fmt: skip


def add_routes(app: web.Application) -> None:
    app.router.add_get("/web/editor/{token}", editor_page)
    app.router.add_post("/web/editor/{token}", submit)
