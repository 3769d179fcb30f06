"""A stub AUTOMATIC1111 WebUI API (modules/api/api.py and models.py shapes).

txt2img/img2img answer ``{"images": [b64 PNG...], "parameters": {...}, "info": "<JSON string>"}``
with ``all_seeds`` and ``index_of_first_image`` in ``info``; ``/sdapi/v1/progress`` answers
``{"progress", "eta_relative", "state", "current_image", "textinfo"}`` while a render runs.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from aiohttp import web

from tests.engines.remote.stubserver import StubServer, b64, tile, unb64


class A1111Stub(StubServer):
    def __init__(self, *, render_seconds: float = 0.15, credentials: str | None = None) -> None:
        super().__init__()
        self.render_seconds = render_seconds
        self.credentials = credentials
        self.return_grid = False
        self.running = False
        self.renders = 0
        """Batches rendered (each costs the GPU the whole render)."""
        self.interrupted = asyncio.Event()
        self.booru = True
        """Whether the WebUI has DeepDanbooru (an extension some installs lack: then a 500)."""

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/sdapi/v1/progress", self.progress),
            web.post("/sdapi/v1/txt2img", self.render),
            web.post("/sdapi/v1/img2img", self.render),
            web.post("/sdapi/v1/interrupt", self.interrupt),
            web.post("/sdapi/v1/extra-single-image", self.extras),
            web.post("/sdapi/v1/interrogate", self.interrogate),
        ]

    def _authorised(self, request: web.Request) -> bool:
        if self.credentials is None:
            return True
        expected = "Basic " + base64.b64encode(self.credentials.encode()).decode()
        return request.headers.get("Authorization") == expected

    def _refuse(self) -> web.Response:
        return web.json_response(
            {"detail": "Incorrect username or password"},
            status=401,
            headers={"WWW-Authenticate": "Basic"},
        )

    async def progress(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._refuse()
        skip = request.query.get("skip_current_image") == "true"
        return web.json_response(
            {
                "progress": 0.5 if self.running else 0.0,
                "eta_relative": 1.0,
                "state": {"job_count": 1 if self.running else 0, "sampling_step": 10},
                "current_image": None if skip or not self.running else b64(tile(99, 8, 8)),
                "textinfo": None,
            }
        )

    async def render(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._refuse()
        body: dict[str, Any] = self.bodies[request.path][-1]
        seeds = [body["seed"] + k for k in range(body.get("batch_size", 1))]
        self.renders += 1
        self.running = True
        try:
            async with asyncio.timeout(self.render_seconds):
                await self.interrupted.wait()
        except TimeoutError:
            pass
        finally:
            self.running = False
        # The WebUI renders at the payload's size (512 when it is left out), img2img included:
        # it resizes the init image to it, so an engine that stopped sending the size would show.
        width, height = body.get("width", 512), body.get("height", 512)
        images = [b64(tile(seed, width, height)) for seed in seeds]
        first = 0
        if self.return_grid:
            images.insert(0, b64(tile(0, width * 2, height * 2)))
            first = 1
        info = {"all_seeds": seeds, "index_of_first_image": first, "prompt": body["prompt"]}
        return web.json_response({"images": images, "parameters": body, "info": json.dumps(info)})

    async def interrupt(self, request: web.Request) -> web.Response:
        self.interrupted.set()
        return web.json_response(None)

    async def interrogate(self, request: web.Request) -> web.Response:
        """The WebUI's shape: {"caption": str}, CLIP's a sentence, DeepDanbooru's tags."""
        body = self.bodies[request.path][-1]
        source = unb64(body["image"])
        red = source.convert("RGB").getpixel((0, 0))[0] > 127
        if body.get("model") == "deepdanbooru":
            if not self.booru:
                return web.json_response({"detail": "deepdanbooru is not installed"}, status=500)
            return web.json_response(
                {"caption": "no_humans, red_theme, still_life, simple_background"}
            )
        subject = "a red square on a table" if red else "a blue square on a table"
        return web.json_response({"caption": f"{subject}, by an unknown artist, flat colours"})

    async def extras(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._refuse()
        body = self.bodies[request.path][-1]
        source = unb64(body["image"])
        factor = body["upscaling_resize"]
        enlarged = source.resize((source.width * factor, source.height * factor))
        return web.json_response({"html_info": "<p>done</p>", "image": b64(enlarged)})
