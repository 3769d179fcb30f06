"""Image prompts: fetched once at submission (so a restart never needs the link), or refused in words."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image, ImageChops, ImageStat

from tests.backends import on_every_backend as backend  # noqa: F401 (a fixture: every test on each)
from tests.service.conftest import ClientFactory, fetch_image, press, submit, wait_done


def png(colour: tuple[int, int, int], size: tuple[int, int] = (96, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
async def images_server() -> AsyncIterator[TestServer]:
    async def red(request: web.Request) -> web.Response:
        return web.Response(body=png((220, 20, 20)), content_type="image/png")

    async def blue(request: web.Request) -> web.Response:
        return web.Response(body=png((20, 20, 220), (64, 96)), content_type="image/png")

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
    app.router.add_get("/blue.png", blue)
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


def mean_blue(image: Image.Image) -> float:
    return float(ImageStat.Stat(image.convert("RGB")).mean[2])


async def test_blend_makes_one_grid_from_the_images_at_the_chosen_shape(
    make_client: ClientFactory, images_server: TestServer
) -> None:
    client = await make_client()
    red, blue = str(images_server.make_url("/red.png")), str(images_server.make_url("/blue.png"))
    response = await client.post(
        "/v2/blend", json={"urls": [red, blue], "dimensions": "portrait", "ref": "b1"}
    )
    accepted = await response.json()
    assert response.status == 200, accepted
    done = await wait_done(client, accepted["messageId"])

    assert done["status"] == "done"
    assert done["content"] == f"{red} {blue} --ar 2:3"
    assert done["ref"] == "b1"
    assert len(done["buttons"]) == 9
    tile = await fetch_image(client, done["imageUrls"][0])
    assert tile.width * 3 == tile.height * 2  # portrait is 2:3
    # The same seeds from the red image alone: the placeholder draws the same pattern, so what
    # differs is the starting picture, and the blue image must have moved it towards blue.
    seed = done["seeds"][0]
    plain = await wait_done(
        client, (await submit(client, f"{red} --ar 2:3 --seed {seed}"))["messageId"]
    )
    assert plain["seeds"] == done["seeds"]
    only_red = await fetch_image(client, plain["imageUrls"][0])
    assert mean_blue(tile) > mean_blue(only_red) + 20  # the blue image is in it too
    assert mean_red(tile) < mean_red(only_red) - 20  # and the red one only half
    assert mean_red(tile) > 40


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ({}, "INVALID_PARAMETER", "urls must be a list"),
        ({"urls": "https://x.io/a.png"}, "INVALID_PARAMETER", "urls must be a list"),
        ({"urls": ["https://x.io/a.png"]}, "INVALID_PARAMETER", "2 to 5 image links; got 1"),
        ({"urls": ["https://x.io/a.png"] * 6}, "INVALID_PARAMETER", "got 6"),
        ({"urls": ["https://x.io/a.png", "a cat"]}, "INVALID_LINK", "`a cat` is not"),
        ({"urls": ["https://x.io/a.png", "https://x.io/b c.png"]}, "INVALID_LINK", "not an"),
        ({"urls": ["https://x.io/a.png", 7]}, "INVALID_PARAMETER", "urls must be a list"),
        (
            {"urls": ["https://x.io/a.png", "https://x.io/b.png"], "dimensions": "tall"},
            "INVALID_PARAMETER",
            "dimensions must be one of square, portrait, landscape",
        ),
    ],
)
async def test_bad_blends_are_refused_in_words(
    make_client: ClientFactory, body: dict[str, Any], code: str, words: str
) -> None:
    client = await make_client(allow_private_urls=False)
    response = await client.post("/v2/blend", json=body)
    data: dict[str, Any] = await response.json()
    assert response.status == 400
    assert data["code"] == code
    assert words in data["msg"]


async def test_reroll_of_a_blend_keeps_its_images(
    make_client: ClientFactory, images_server: TestServer
) -> None:
    client = await make_client()
    red, blue = str(images_server.make_url("/red.png")), str(images_server.make_url("/blue.png"))
    response = await client.post("/v2/blend", json={"urls": [red, blue]})
    done = await wait_done(client, (await response.json())["messageId"])
    rerolled = await wait_done(
        client, (await press(client, done["buttonMessageId"], "🔄"))["messageId"]
    )
    assert rerolled["status"] == "done"
    assert rerolled["settings"]["mode"] == done["settings"]["mode"] == "img2img"
    assert rerolled["seeds"] != done["seeds"]
    # Same starting picture, new seeds: the red and blue images are in the new grid too.
    tile = await fetch_image(client, rerolled["imageUrls"][0])
    assert mean_red(tile) > 40
    assert mean_blue(tile) > 40
