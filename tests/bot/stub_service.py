"""A small stub of the Imagine v2 API: scripted answers in the documented shapes, every request kept.

Real HTTP on 127.0.0.1 (pytest-aiohttp's ``aiohttp_server``), so the client is tested through
aiohttp exactly as it runs against the service.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image

GRID_BUTTONS = ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]
UPSCALE_BUTTONS = [
    "Vary (Strong)",
    "Vary (Subtle)",
    "Zoom Out 2x",
    "Zoom Out 1.5x",
    "⬅️",
    "➡️",
    "⬆️",
    "⬇️",
]


def png_bytes(
    size: tuple[int, int] = (64, 64), colour: tuple[int, int, int] = (200, 40, 40)
) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any] | None
    authorization: str | None


@dataclass
class StubService:
    base_url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    submit_answer: tuple[int, dict[str, Any]] | None = None
    """Next POST /v2/imagine or /v2/button answer; None = success with a new id."""
    states: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """GET /v2/message/{id} answers, in order; the last one repeats."""
    images: dict[str, bytes] = field(default_factory=dict)
    info_answer: dict[str, Any] = field(default_factory=dict)
    counter: int = 0
    down: bool = False
    """True: GET /v2/message answers 503, as a service whose store has gone away."""
    inbox: list[dict[str, Any]] = field(default_factory=list)
    """Jobs sent from the web editor, as GET /web/api/inbox lists them (the cursor: a count)."""

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_post("/v2/imagine", self._submit)
        app.router.add_post("/v2/button", self._submit)
        app.router.add_get("/v2/message/{id}", self._message)
        app.router.add_get("/v2/info", self._info)
        app.router.add_get("/images/{name}", self._image)
        app.router.add_get("/web/api/inbox", self._inbox)
        return app

    def image_url(self, name: str) -> str:
        return f"{self.base_url}/images/{name}"

    def finish(
        self,
        job_id: str,
        *,
        image: bytes,
        kind: str = "imagine",
        buttons: list[str] | None = None,
        content: str = "a red square",
        blocked: list[int] | None = None,
    ) -> None:
        """Script a job: queued, running at 50 % with a preview, then done with ``image``."""
        self.images[f"{job_id}.png"] = image
        self.images[f"{job_id}-preview.png"] = png_bytes((16, 16))
        done = {
            "progress": 100,
            "response": {
                "status": "done",
                "type": kind,
                "content": content,
                "imageUrl": self.image_url(f"{job_id}.png"),
                "imageUrls": [],
                "buttons": buttons if buttons is not None else GRID_BUTTONS,
                "buttonMessageId": f"b-{job_id}",
                "seeds": [1, 2, 3, 4],
                **({"blocked": blocked} if blocked else {}),
            },
        }
        self.states[job_id] = [
            {"progress": 0, "status": "queued", "queuePosition": 2, "progressImageUrl": None},
            {
                "progress": 50,
                "status": "running",
                "queuePosition": None,
                "progressImageUrl": self.image_url(f"{job_id}-preview.png"),
            },
            done,
        ]

    def fail(self, job_id: str, code: str, error: str) -> None:
        self.states[job_id] = [
            {
                "progress": 100,
                "response": {
                    "status": "failed",
                    "type": "imagine",
                    "content": code,
                    "error": error,
                    "buttons": [],
                    "imageUrl": None,
                },
            },
        ]

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        self.requests.append(
            Recorded(
                request.method,
                request.path,
                dict(request.query),
                body,
                request.headers.get("Authorization"),
            )
        )
        response: web.StreamResponse = await handler(request)
        return response

    async def _submit(self, request: web.Request) -> web.Response:
        if self.submit_answer is not None:
            status, body = self.submit_answer
            self.submit_answer = None
            return web.json_response(body, status=status)
        self.counter += 1
        return web.json_response(
            {
                "success": True,
                "messageId": f"job{self.counter}",
                "createdAt": "2024-01-01T00:00:00.000Z",
            }
        )

    async def _message(self, request: web.Request) -> web.Response:
        if self.down:
            return web.json_response({"success": False, "msg": "Unavailable."}, status=503)
        job_id = request.match_info["id"]
        script = self.states.get(job_id)
        if not script:
            return web.json_response({"success": False, "msg": "Unknown messageId."}, status=404)
        state = script.pop(0) if len(script) > 1 else script[0]
        return web.json_response(state)

    async def _info(self, request: web.Request) -> web.Response:
        data = {
            "queued": 1,
            "running": 1,
            "engine": "placeholder",
            "placeholder": True,
            "version": "0.1.0",
        }
        data.update(self.info_answer)
        return web.json_response(data)

    async def _image(self, request: web.Request) -> web.Response:
        data = self.images.get(request.match_info["name"])
        if data is None:
            raise web.HTTPNotFound()
        return web.Response(body=data, content_type="image/png")

    async def _inbox(self, request: web.Request) -> web.Response:
        after = request.query.get("after")
        jobs = [] if after is None else self.inbox[int(after) :]
        return web.json_response({"success": True, "cursor": len(self.inbox), "jobs": jobs})
