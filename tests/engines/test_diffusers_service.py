"""The service with the real diffusers engine (a tiny pipeline the tests build, loaded through the engine's
real path, offline): grids, image prompts, every button, Real-ESRGAN upscales, seeds, a free event loop."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image, ImageChops, ImageStat

from imagine.app import create_app
from imagine.jobs import GRID_BUTTONS
from imagine.settings import Settings
from tests.engines.conftest import TinyModels, diffusers_settings
from tests.service.conftest import fetch_image, press, submit, wait_done

Client = TestClient[Any, Any]


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings, tiny_models: TinyModels) -> Client:
    app = create_app(diffusers_settings(settings, tiny_models.pipeline, IMAGINE_UPSCALER="auto"))
    result: Client = await aiohttp_client(app)
    return result


@pytest.fixture
async def picture_server() -> AsyncIterator[TestServer]:
    async def picture(request: web.Request) -> web.Response:
        colour = (250, 250, 20) if request.match_info["name"] == "yellow" else (20, 20, 250)
        buffer = io.BytesIO()
        Image.new("RGB", (80, 80), colour).save(buffer, format="PNG")
        return web.Response(body=buffer.getvalue(), content_type="image/png")

    app = web.Application()
    app.router.add_get("/{name}.png", picture)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


def difference(a: Image.Image, b: Image.Image) -> float:
    return float(
        sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean)
    )


async def test_grid_from_the_real_pipeline_and_same_seed_same_grid(client: Client) -> None:
    info = await (await client.get("/v2/info")).json()
    assert info["engine"] == "diffusers"
    assert info["placeholder"] is False
    first = await wait_done(
        client, (await submit(client, "a red cube --seed 11"))["messageId"], timeout=120
    )
    again = await wait_done(
        client, (await submit(client, "a red cube --seed 11"))["messageId"], timeout=120
    )
    other = await wait_done(
        client, (await submit(client, "a red cube --seed 12"))["messageId"], timeout=120
    )
    assert first["buttons"] == list(GRID_BUTTONS)
    assert first["seeds"] == [11, 12, 13, 14]
    assert first["settings"]["engine"] == "diffusers"
    tiles = [await fetch_image(client, url) for url in first["imageUrls"]]
    assert len({tile.size for tile in tiles}) == 1
    assert difference(tiles[0], await fetch_image(client, again["imageUrls"][0])) == 0
    # --seed 12's first tile is --seed 11's second: tile k of a batch equals a run with its seed
    assert difference(tiles[1], await fetch_image(client, other["imageUrls"][0])) < 1.0
    assert difference(tiles[0], tiles[1]) > 1.0


async def test_image_prompt_from_a_link(client: Client, picture_server: TestServer) -> None:
    # Random weights do not reconstruct colours, so the test asks what it can: the image is used
    # (the result depends on it) and deterministically (the same image and seed, the same tiles).
    async def first_tile(msg: str) -> Image.Image:
        done = await wait_done(client, (await submit(client, msg))["messageId"], timeout=120)
        assert done["status"] == "done", done
        return await fetch_image(client, done["imageUrls"][0])

    yellow, blue = picture_server.make_url("/yellow.png"), picture_server.make_url("/blue.png")
    plain = await first_tile("a cube --seed 5")
    from_yellow = await first_tile(f"{yellow} a cube --seed 5")
    again = await first_tile(f"{yellow} a cube --seed 5")
    from_blue = await first_tile(f"{blue} a cube --seed 5")
    assert difference(from_yellow, again) == 0
    assert difference(from_yellow, plain) > 1.0
    assert difference(from_yellow, from_blue) > 1.0


async def test_every_button_and_a_real_esrgan_upscale(client: Client) -> None:
    info = await (await client.get("/v2/info")).json()
    assert info["capabilities"]["upscaler"].startswith("Real-ESRGAN"), info
    grid = await wait_done(
        client, (await submit(client, "a cube --ar 3:2"))["messageId"], timeout=120
    )
    for button in ("V2", "🔄"):
        result = await wait_done(
            client, (await press(client, grid["buttonMessageId"], button))["messageId"], timeout=120
        )
        assert result["status"] == "done", (button, result)
        assert len(result["imageUrls"]) == 4
    upscale = await wait_done(
        client, (await press(client, grid["buttonMessageId"], "U1"))["messageId"], timeout=120
    )
    source = await fetch_image(client, upscale["imageUrl"])
    assert "Make Square" in upscale["buttons"]
    for button in upscale["buttons"]:
        if button == "Vary (Region)":
            continue  # it takes a mask: pressed with one in tests/contract
        result = await wait_done(
            client,
            (await press(client, upscale["buttonMessageId"], button))["messageId"],
            timeout=120,
        )
        assert result["status"] == "done", (button, result)
        image = await fetch_image(client, result["imageUrl"])
        if button.startswith("Upscale"):  # Subtle (Real-ESRGAN) and Creative (a re-render)
            assert image.size == (source.width * 2, source.height * 2)
            # neither is a resize: each differs from Lanczos
            lanczos = source.resize(image.size, Image.Resampling.LANCZOS)
            assert difference(image, lanczos) > 0.5


async def test_the_event_loop_keeps_ticking_while_the_engine_renders(client: Client) -> None:
    gaps: list[float] = []
    stop = asyncio.Event()

    async def heartbeat() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    beat = asyncio.create_task(heartbeat())
    began = time.perf_counter()
    await wait_done(client, (await submit(client, "a calm sea --q 2"))["messageId"], timeout=120)
    took = time.perf_counter() - began
    stop.set()
    await beat
    assert len(gaps) > took / 0.05  # ticking all along
    assert max(gaps) < 0.5
