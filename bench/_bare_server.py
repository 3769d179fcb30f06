"""The baseline: a bare aiohttp app answering the same routes with constant JSON, no work behind them."""

from __future__ import annotations

import sys

from aiohttp import web

ACCEPTED = {
    "success": True,
    "messageId": "OtfxNzfMIKBPVE1aP4u4",
    "createdAt": "2023-04-04T13:07:01.927Z",
}
PROGRESS = {"progress": 0, "progressImageUrl": None, "status": "queued", "queuePosition": 3}


async def imagine(request: web.Request) -> web.Response:
    await request.json()
    return web.json_response(ACCEPTED)


async def message(request: web.Request) -> web.Response:
    return web.json_response(PROGRESS)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


app = web.Application()
app.router.add_post("/v2/imagine", imagine)
app.router.add_get("/v2/message/{id}", message)
app.router.add_get("/health", health)

if __name__ == "__main__":
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
