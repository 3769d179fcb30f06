"""What every stub of a remote service shares: it records each request and has failure switches.

A service stub subclasses :class:`StubServer`, adds the real routes in ``routes()``, and replays
the documented shapes. The switches work on any path, before the route runs:

- ``fail_next(path, status, body, times)``: answer ``status`` with ``body`` that many times,
  then serve normally (401, "5xx then OK", moderation errors...);
- ``take_then_fail(path, status, body, times)``: run the route (the server takes the request:
  a job is queued, kudos are spent), then answer ``status`` instead, as a proxy in front of the
  server does when it loses the server's answer (502, 504);
- ``hang(path)``: never answer (until the test ends);
- ``malformed(path)``: answer 200 with an HTML page instead of JSON.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections import Counter, defaultdict
from typing import Any

from aiohttp import web
from PIL import Image


def seed_colour(seed: int) -> tuple[int, int, int]:
    """The colour a stub paints a tile rendered with ``seed``: tests read the seed back from it."""
    return (seed * 37 % 256, seed * 91 % 256, seed * 13 % 256)


def channels(image: Image.Image, x: int, y: int) -> tuple[int, ...]:
    """The pixel at (x, y) of a multi-band image as a tuple (getpixel's type is a union)."""
    value = image.getpixel((x, y))
    assert isinstance(value, tuple)
    return value


def tile(seed: int, width: int, height: int) -> Image.Image:
    return Image.new("RGB", (width, height), seed_colour(seed))


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, lossless=True)  # lossless keeps the seed colours exact
    return buffer.getvalue()


def b64(image: Image.Image, fmt: str = "PNG") -> str:
    return base64.b64encode(png_bytes(image, fmt)).decode("ascii")


def unb64(data: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(data)))


class StubServer:
    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.bodies: defaultdict[str, list[Any]] = defaultdict(list)
        self.headers: defaultdict[str, list[dict[str, str]]] = defaultdict(list)
        self.failures: defaultdict[str, list[tuple[int, Any]]] = defaultdict(list)
        self.lost_answers: defaultdict[str, list[tuple[int, Any]]] = defaultdict(list)
        self.hanging: set[str] = set()
        self.broken: set[str] = set()
        self.released = asyncio.Event()

    def fail_next(self, path: str, status: int, body: Any = None, times: int = 1) -> None:
        self.failures[path] += [(status, body if body is not None else {"detail": "stub"})] * times

    def take_then_fail(self, path: str, status: int, body: Any = None, times: int = 1) -> None:
        answer = (status, body if body is not None else "<html>502 Bad Gateway</html>")
        self.lost_answers[path] += [answer] * times

    def hang(self, path: str) -> None:
        self.hanging.add(path)

    def malformed(self, path: str) -> None:
        self.broken.add(path)

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._switches])
        app.add_routes(self.routes())
        return app

    @web.middleware
    async def _switches(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        self.hits[path] += 1
        self.headers[path].append(dict(request.headers))
        self.bodies[path].append(await _body(request))
        if path in self.hanging:
            await self.released.wait()
        if self.failures[path]:
            status, body = self.failures[path].pop(0)
            return web.json_response(body, status=status)
        if path in self.broken:
            return web.Response(text="<html>502 Bad Gateway</html>", content_type="text/html")
        response: web.StreamResponse = await handler(request)
        if self.lost_answers[path]:
            status, body = self.lost_answers[path].pop(0)
            if isinstance(body, str):
                return web.Response(text=body, status=status, content_type="text/html")
            return web.json_response(body, status=status)
        return response


async def _body(request: web.Request) -> Any:
    """JSON bodies parsed; multipart forms as {field: str or bytes}; else None."""
    if request.content_type == "application/json":
        return json.loads(await request.read() or b"null")
    if request.content_type == "multipart/form-data":
        form = await request.post()
        return {
            key: value.file.read() if isinstance(value, web.FileField) else value
            for key, value in form.items()
        }
    return None
