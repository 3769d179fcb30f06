"""The two calls the bot makes for the pages, with its API token like any other call:
``POST /web/api/links`` (a signed link for a member) and ``GET /web/api/inbox`` (the Vary (Region)
jobs members sent from the editor, for the bot to post in their channels)."""

from __future__ import annotations

import json
import time

from aiohttp import web

from imagine.edges.common import body, string, token
from imagine.errors import ServiceError
from imagine.keys import SERVICE, SETTINGS
from imagine.limits import token_scope
from imagine.web import queries
from imagine.web.keys import WEB
from imagine.web.signing import PURPOSES, Link


def _snowflake(data: dict[str, object], name: str, *, required: bool = False) -> str:
    value = string(data, name, required=required, limit=24)
    if value and not value.isdigit():
        raise ServiceError(400, None, f"'{name}' must be a Discord id (digits).")
    return value


async def make_link(request: web.Request) -> web.Response:
    data = await body(request)
    purpose = string(data, "purpose", required=True, limit=20)
    if purpose not in PURPOSES:
        raise ServiceError(400, None, f"'purpose' must be one of {', '.join(PURPOSES)}.")
    user = _snowflake(data, "user", required=True)
    settings = request.app[SETTINGS]
    link = Link(
        purpose=purpose,
        user=user,
        scope=token_scope(token(request)),
        expires=time.time() + settings.link_ttl,
    )
    if purpose == "editor":
        job_id = string(data, "buttonMessageId", required=True, limit=64)
        parent = await request.app[SERVICE].store.by_button_message_id(job_id)
        if parent is None or not parent.owner.startswith(f"{link.scope}:"):
            raise ServiceError(404, None, f"No image has buttonMessageId {job_id!r}.")
        if "Vary (Region)" not in parent.result.get("buttons", []):
            raise ServiceError(
                400, None, "Vary (Region) is not offered on this image: the engine cannot repaint "
                "part of an image.",
            )  # fmt: skip
        link = Link(
            **{**link.__dict__, "job": job_id, "guild": _snowflake(data, "guild"),
               "channel": _snowflake(data, "channel", required=True),
               "message": _snowflake(data, "message")},
        )  # fmt: skip
    signed = request.app[WEB].signer.sign(link)
    url = f"{settings.base_url}/web/{purpose}/{signed}"
    return web.json_response({"success": True, "url": url, "expiresAt": int(link.expires)})


async def inbox(request: web.Request) -> web.Response:
    """``?after=<cursor>``: the editor's jobs since then, and the cursor to ask with next;
    without it, only the cursor (a bot that starts takes what is sent from then on)."""
    store = request.app[SERVICE].store
    raw = request.query.get("after", "")
    if not raw:
        return web.json_response(
            {"success": True, "cursor": await queries.last_seq(store), "jobs": []}
        )
    if not raw.isdigit() or len(raw) > 18:
        raise ServiceError(400, None, "'after' must be the cursor an earlier answer gave.")
    cursor = int(raw)
    found = []
    for seq, job in await queries.inbox(store, token_scope(token(request)), cursor):
        cursor = max(cursor, seq)
        ref = json.loads(job.ref)
        found.append({
            "messageId": job.id, "user": ref.get("user", ""), "guild": ref.get("guild", ""),
            "channel": ref.get("channel", ""), "replyTo": ref.get("reply", ""),
            "prompt": job.content, "button": job.action,
        })  # fmt: skip
    return web.json_response({"success": True, "cursor": cursor, "jobs": found})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/web/api/links", make_link)
    app.router.add_get("/web/api/inbox", inbox)
