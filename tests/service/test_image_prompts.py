"""Image prompts: fetched once at submission (so a restart never needs the link), or refused in words."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image, ImageChops, ImageStat

from tests.service.conftest import ClientFactory, fetch_image, submit, wait_done


def png(colour: tuple[int, int, int], size: tuple[int, int] = (96, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
async def images_server() -> AsyncIterator[TestServer]:
    async def red(request: web.Request) -> web.Response:
        return web.Response(body=png((220, 20, 20)), content_type="image/png")

    async def text(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    async def huge(request: web.Request) -> web.Response:
        return web.Response(body=b"\0" * (21 * 1024 * 1024), content_type="image/png")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/red.png")

    async def missing(request: web.Request) -> web.Response:
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_get("/red.png", red)
    app.router.add_get("/text.png", text)
    app.router.add_get("/huge.png", huge)
    app.router.add_get("/moved", moved)
    app.router.add_get("/missing.png", missing)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


def mean_red(image: Image.Image) -> float:
    return float(ImageStat.Stat(image.convert("RGB")).mean[0])


async def test_image_prompt_is_used_as_init_image(
    make_client: ClientFactory, images_server: TestServer
) -> None:
    client = await make_client()
    url = str(images_server.make_url("/moved"))  # a redirect, followed and checked
    plain = await wait_done(client, (await submit(client, "a cat --seed 5"))["messageId"])
    done = await wait_done(
        client, (await submit(client, f"{url} a cat --seed 5 --iw 2"))["messageId"]
    )
    assert done["content"] == "a cat --seed 5 --iw 2"
    with_image = await fetch_image(client, done["imageUrls"][0])
    without = await fetch_image(client, plain["imageUrls"][0])
    assert mean_red(with_image) > mean_red(without) + 20
    assert sum(ImageStat.Stat(ImageChops.difference(with_image, without)).mean) > 10


@pytest.mark.parametrize(
    ("path", "words"),
    [("/text.png", "not an image"), ("/huge.png", "over 20 MB"), ("/missing.png", "HTTP 404")],
)
async def test_unusable_image_links_are_refused_in_words(
    make_client: ClientFactory, images_server: TestServer, path: str, words: str
) -> None:
    client = await make_client()
    response = await client.post(
        "/v2/imagine", json={"msg": f"{images_server.make_url(path)} a cat"}
    )
    data: dict[str, Any] = await response.json()
    assert response.status == 400
    assert data["code"] == "INVALID_LINK"
    assert words in data["msg"]


async def test_unreachable_link(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await client.post(
        "/v2/imagine", json={"msg": "http://127.0.0.1:9/nothing.png a cat"}
    )
    data = await response.json()
    assert response.status == 400
    assert data["code"] == "INVALID_LINK"
    assert "could not be reached" in data["msg"]


async def test_private_links_are_refused_by_default(
    make_client: ClientFactory, images_server: TestServer
) -> None:
    client = await make_client(allow_private_urls=False)
    response = await client.post(
        "/v2/imagine", json={"msg": f"{images_server.make_url('/red.png')} a cat"}
    )
    data = await response.json()
    assert response.status == 400
    assert data["code"] == "INVALID_LINK"
    assert "private or local address" in data["msg"]
