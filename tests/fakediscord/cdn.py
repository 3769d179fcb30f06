"""A tiny CDN: attachment bytes at /attachments/{channel}/{attachment}/{filename}, like
cdn.discordapp.com, so a test (or the bot) can read back exactly what was uploaded."""

from __future__ import annotations

from aiohttp import web

from tests.fakediscord.state import World


def routes(world: World) -> list[web.RouteDef]:
    async def attachment(request: web.Request) -> web.Response:
        blob = world.blobs.get(request.rel_url.raw_path)
        if blob is None:
            # the CDN answers a plain 404, not a JSON error
            return web.Response(status=404, text="Not Found")
        data, content_type = blob
        return web.Response(body=data, content_type=content_type)

    return [web.get("/attachments/{channel_id}/{attachment_id}/{filename}", attachment)]
