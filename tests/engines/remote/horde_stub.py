"""A stub AI Horde v2 image API (horde/apis/v2/stable.py and models/stable_v2.py shapes).

``POST /v2/generate/async`` answers 202 ``{"id", "kudos"}``; ``GET /v2/generate/check/{id}``
answers the light status (finished, processing, restarted, waiting, done, faulted, wait_time,
queue_position, kudos, is_possible); ``GET /v2/generate/status/{id}`` adds ``generations``
(img: an R2 download link, or base64 WebP when r2 is false; seed as a string; censored);
``DELETE /v2/generate/status/{id}`` cancels. Errors are ``{"message", "rc"}``.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web
from PIL import Image

from tests.engines.remote.stubserver import StubServer, b64, png_bytes, tile, unb64


class HordeStub(StubServer):
    def __init__(self, *, checks_until_done: int = 3) -> None:
        super().__init__()
        self.checks_until_done = checks_until_done
        self.mode = "ok"  # ok, faulted, impossible, never, censored
        self.requests: dict[str, dict[str, Any]] = {}
        self.deleted: list[str] = []
        self.r2: dict[str, bytes] = {}
        self.check_failures = 0
        """How many checks answer 503 before the real answers."""
        self.inline = False
        """Send base64 WebP even when r2 links were asked for (as for r2: false)."""

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v2/generate/async", self.submit),
            web.get("/api/v2/generate/check/{id}", self.check),
            web.get("/api/v2/generate/status/{id}", self.status),
            web.delete("/api/v2/generate/status/{id}", self.cancel),
            web.get("/r2/{name}", self.download),
            web.post("/api/v2/interrogate/async", self.interrogate),
            web.get("/api/v2/interrogate/status/{id}", self.interrogation),
            web.delete("/api/v2/interrogate/status/{id}", self.drop_interrogation),
        ]

    interrogations_waiting = 1
    """Status polls an interrogation stays "processing" before it is done."""
    interrogation_state = "done"

    async def interrogate(self, request: web.Request) -> web.Response:
        self.polls = 0
        return web.json_response({"id": "int-1"}, status=202)

    async def interrogation(self, request: web.Request) -> web.Response:
        """The Horde's shape: forms with their state and result (caption; CLIP's tags)."""
        self.polls += 1
        if self.polls <= self.interrogations_waiting:
            return web.json_response({"state": "processing", "forms": [
                {"form": "caption", "state": "processing"}]})  # fmt: skip
        if self.interrogation_state != "done":
            return web.json_response({"state": self.interrogation_state, "forms": []})
        return web.json_response({"state": "done", "forms": [
            {"form": "caption", "state": "done", "result": {"caption": "a lighthouse on a cliff"}},
            {"form": "interrogation", "state": "done", "result": {"interrogation": {
                "tags": [{"text": "sea", "confidence": 0.9}, {"text": "dusk", "confidence": 0.7},
                         {"text": "rocks", "confidence": 0.5}, {"text": "waves", "confidence": 0.4}],
                "artists": [{"text": "by Turner", "confidence": 0.3}]}}},
        ]})  # fmt: skip

    async def drop_interrogation(self, request: web.Request) -> web.Response:
        return web.json_response({"state": "cancelled"})

    async def submit(self, request: web.Request) -> web.Response:
        if request.headers.get("apikey") != "0000000000" and request.headers.get("apikey") != "k3y":
            return web.json_response(
                {"message": "No user matching sent API Key.", "rc": "InvalidAPIKey"}, status=401
            )
        body = self.bodies[request.path][-1]
        request_id = str(uuid.uuid4())
        self.requests[request_id] = {"body": body, "checks": 0}
        return web.json_response({"id": request_id, "kudos": 12.0}, status=202)

    def _lite(self, request_id: str) -> dict[str, Any]:
        state = self.requests[request_id]
        n = state["body"]["params"]["n"]
        left = max(0, self.checks_until_done - state["checks"])
        done = left == 0 and self.mode not in ("never", "faulted", "impossible")
        return {
            "finished": n if done else n - min(n, left),
            "processing": 0 if done else 1,
            "restarted": 0,
            "waiting": 0 if done else max(0, left - 1),
            "done": done,
            "faulted": self.mode == "faulted" and state["checks"] >= 2,
            "wait_time": 0 if done else left * 10,
            "queue_position": left,
            "kudos": 12.0,
            "is_possible": self.mode != "impossible",
        }

    async def check(self, request: web.Request) -> web.Response:
        request_id = request.match_info["id"]
        if request_id not in self.requests:
            message = f"Waiting Prompt with ID '{request_id}' not found."
            return web.json_response({"message": message, "rc": "RequestNotFound"}, status=404)
        if self.check_failures:
            self.check_failures -= 1
            return web.json_response({"message": "Service Unavailable"}, status=503)
        self.requests[request_id]["checks"] += 1
        return web.json_response(self._lite(request_id))

    def _generations(self, request_id: str, request: web.Request) -> list[dict[str, Any]]:
        body = self.requests[request_id]["body"]
        params = body["params"]
        seed, step = int(params["seed"]), params.get("seed_variation", 1)
        size = params["width"], params["height"]
        generations = []
        for k in range(params["n"]):
            picture: Image.Image = tile(seed + k * step, *size)
            if "source_image" in body:
                picture = tile(seed + k * step, *unb64(body["source_image"]).size)
            name = f"{request_id}-{k}.webp"
            self.r2[name] = png_bytes(picture, "WEBP")
            img = str(request.url.with_path(f"/r2/{name}").with_query(None))
            generations.append(
                {
                    "img": b64(picture, "WEBP") if self.inline else img,
                    "seed": str(seed + k * step),
                    "id": str(uuid.uuid4()),
                    "censored": self.mode == "censored",
                    "worker_id": "w1",
                    "worker_name": "stub worker",
                    "model": (body.get("models") or ["stable_diffusion"])[0],
                    "state": "ok",
                }
            )
        return list(reversed(generations))  # the Horde gives no order guarantee

    async def status(self, request: web.Request) -> web.Response:
        request_id = request.match_info["id"]
        answer = self._lite(request_id) | {"shared": False}
        answer["generations"] = self._generations(request_id, request) if answer["done"] else []
        return web.json_response(answer)

    async def cancel(self, request: web.Request) -> web.Response:
        request_id = request.match_info["id"]
        self.deleted.append(request_id)
        return web.json_response(self._lite(request_id) | {"generations": [], "shared": False})

    async def download(self, request: web.Request) -> web.Response:
        return web.Response(body=self.r2[request.match_info["name"]], content_type="image/webp")
