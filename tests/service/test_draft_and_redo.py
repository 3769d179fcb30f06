"""--draft and Enhance, the Redo of an upscale, what an engine ignored, and --sref/--oref, through
the real app (placeholder engine, a real SQLite file, reference images from a local server)."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image, ImageChops, ImageStat

from imagine.engines.placeholder import PlaceholderEngine
from tests.service.conftest import ClientFactory, fetch_image, press, submit, wait_done

Client = TestClient[Any, Any]


async def done(client: Client, msg: str) -> dict[str, Any]:
    return await wait_done(client, (await submit(client, msg))["messageId"])


async def pressed(client: Client, message: dict[str, Any], button: str) -> dict[str, Any]:
    assert button in message["buttons"], message["buttons"]
    job = await press(client, message["buttonMessageId"], button)
    return await wait_done(client, job["messageId"])


def difference(a: Image.Image, b: Image.Image) -> float:
    return float(
        sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean)
    )


def mean_red(image: Image.Image) -> float:
    return float(ImageStat.Stat(image.convert("RGB")).mean[0])


@pytest.fixture
async def references() -> AsyncIterator[TestServer]:
    async def picture(request: web.Request) -> web.Response:
        colour = {"red": (250, 10, 10), "green": (10, 250, 10)}[request.match_info["name"]]
        buffer = io.BytesIO()
        Image.new("RGB", (48, 48), colour).save(buffer, format="PNG")
        return web.Response(body=buffer.getvalue(), content_type="image/png")

    app = web.Application()
    app.router.add_get("/{name}.png", picture)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


async def test_a_draft_grid_is_smaller_and_its_v_and_reroll_stay_drafts(client: Client) -> None:
    full = await done(client, "a lighthouse --seed 3")
    draft = await done(client, "a lighthouse --seed 3 --draft")
    assert (full["settings"]["width"], full["settings"]["height"]) == (512, 512)
    assert (draft["settings"]["width"], draft["settings"]["height"]) == (384, 384)
    assert draft["settings"]["draft"] is True
    assert (await fetch_image(client, draft["imageUrls"][0])).size == (384, 384)
    for button in ("V2", "🔄"):
        again = await pressed(client, draft, button)
        assert again["settings"]["draft"] is True
        assert again["settings"]["width"] == 384


async def test_enhance_rerenders_a_draft_tile_at_full_quality(client: Client) -> None:
    draft = await done(client, "a lighthouse --seed 7 --draft")
    tile = await pressed(client, draft, "U3")
    assert "Enhance" in tile["buttons"]
    enhanced = await pressed(client, tile, "Enhance")
    assert enhanced["button"] == "Enhance"
    assert enhanced["type"] == "upscale"
    assert enhanced["seeds"] == [draft["seeds"][2]]  # the tile's own seed
    assert enhanced["content"] == "a lighthouse --seed 7"
    assert enhanced["prompt"]["draft"] is False
    assert enhanced["settings"]["width"] == 512
    assert enhanced["settings"]["strength"] == pytest.approx(0.5)
    assert "draft" not in enhanced["settings"]
    image = await fetch_image(client, enhanced["imageUrl"])
    assert image.size == (512, 512)
    assert "Enhance" not in enhanced["buttons"]
    assert "Upscale (Subtle)" in enhanced["buttons"]
    source = await fetch_image(client, tile["imageUrl"])
    assert difference(image.resize(source.size), source) > 1  # re-rendered, not just enlarged


async def test_a_full_quality_tile_offers_no_enhance(client: Client) -> None:
    grid = await done(client, "a lighthouse")
    tile = await pressed(client, grid, "U1")
    assert "Enhance" not in tile["buttons"]
    response = await client.post(
        "/v2/button", json={"buttonMessageId": tile["buttonMessageId"], "button": "Enhance"}
    )
    assert response.status == 400
    assert "is not a button of that message" in (await response.json())["msg"]


async def test_redo_upscale_runs_again_on_the_same_source(client: Client) -> None:
    grid = await done(client, "a lighthouse --seed 2")
    tile = await pressed(client, grid, "U2")
    subtle = await pressed(client, tile, "Upscale (Subtle)")
    assert subtle["buttons"][-2:] == ["Redo Upscale (Subtle)", "Redo Upscale (Creative)"]
    assert "Upscale (Subtle)" not in subtle["buttons"]
    again = await pressed(client, subtle, "Redo Upscale (Subtle)")
    assert again["button"] == "Redo Upscale (Subtle)"
    assert again["type"] == "upscale"
    first, second = [await fetch_image(client, m["imageUrl"]) for m in (subtle, again)]
    assert first.size == second.size == (1024, 1024)  # of the 512 tile, not of the 1024 result
    assert difference(first, second) < 1
    creative = await pressed(client, again, "Redo Upscale (Creative)")
    reroll = await pressed(client, creative, "Redo Upscale (Creative)")
    assert (await fetch_image(client, creative["imageUrl"])).size == (1024, 1024)
    assert (await fetch_image(client, reroll["imageUrl"])).size == (1024, 1024)
    assert creative["seeds"] != reroll["seeds"]  # a re-roll: a new seed each time
    assert reroll["buttons"][-2:] == ["Redo Upscale (Subtle)", "Redo Upscale (Creative)"]


async def test_parameters_the_engine_ignores_are_named_in_the_result(client: Client) -> None:
    message = await done(client, "a lighthouse --weird 250 --stop 40 --style cute")
    assert message["ignored"] == ["--stop 40", "--weird 250", "--style cute"]
    assert "ignored" not in await done(client, "a lighthouse")


async def test_style_and_omni_references_reach_the_engine(
    client: Client, references: TestServer
) -> None:
    red, green = [str(references.make_url(f"/{name}.png")) for name in ("red", "green")]
    plain = await done(client, "a lighthouse --seed 4")
    styled = await done(client, f"a lighthouse --seed 4 --sref {red}")
    off = await done(client, f"a lighthouse --seed 4 --sref {red} --sw 0")
    omni = await done(client, f"a lighthouse --seed 4 --cref {green} --cw 200")
    tiles = [await fetch_image(client, m["imageUrls"][0]) for m in (plain, styled, off, omni)]
    assert mean_red(tiles[1]) > mean_red(tiles[0]) + 20
    assert difference(tiles[2], tiles[0]) == 0  # --sw 0: as if there were no reference
    assert ImageStat.Stat(tiles[3]).mean[1] > ImageStat.Stat(tiles[0]).mean[1] + 20
    assert omni["prompt"]["omni_ref"] == green
    # a press keeps the references: the variations and the upscale's Vary are styled too
    variation = await pressed(client, styled, "V1")
    varied = await pressed(client, await pressed(client, styled, "U1"), "Vary (Strong)")
    for message in (variation, varied):
        assert mean_red(await fetch_image(client, message["imageUrls"][0])) > mean_red(tiles[0])


async def test_an_engine_without_references_refuses_them_in_a_sentence(
    make_client: ClientFactory, references: TestServer
) -> None:
    engine = PlaceholderEngine()
    engine._capabilities = dataclasses.replace(engine.capabilities, honours=())
    client = await make_client(engine=engine)
    red = references.make_url("/red.png")
    for msg, words in (
        (f"a cat --sref {red}", "The placeholder engine cannot use style references (--sref); "),
        (f"a cat --oref {red}", "The placeholder engine cannot use omni references (--oref); "),
    ):
        response = await client.post("/v2/imagine", json={"msg": msg})
        data = await response.json()
        assert response.status == 400
        assert data["code"] == "INVALID_PARAMETER"
        assert data["msg"].startswith(words)


async def test_reference_links_go_through_the_guarded_fetch(make_client: ClientFactory) -> None:
    client = await make_client(allow_private_urls=False)
    response = await client.post(
        "/v2/imagine", json={"msg": "a cat --sref http://127.0.0.1:9/style.png"}
    )
    data = await response.json()
    assert response.status == 400
    assert data["code"] == "INVALID_LINK"
    assert "cannot be used" in data["msg"]


async def test_v_with_vary_subtle_stays_closer_to_its_tile_than_strong(client: Client) -> None:
    grid = await done(client, "a lighthouse --seed 11")
    tile = (await fetch_image(client, grid["imageUrls"][1])).convert("RGB")
    moved = {}
    for vary in ("strong", "subtle"):
        response = await client.post(
            "/v2/button",
            json={"buttonMessageId": grid["buttonMessageId"], "button": "V2", "vary": vary},
        )
        assert response.status == 200, await response.json()
        result = await wait_done(client, (await response.json())["messageId"])
        assert result["settings"]["strength"] == pytest.approx(
            {"strong": 0.65, "subtle": 0.35}[vary]
        )
        tiles = [await fetch_image(client, url) for url in result["imageUrls"]]
        moved[vary] = sum(difference(t.resize(tile.size), tile) for t in tiles) / len(tiles)
    assert moved["subtle"] < moved["strong"]
    # without vary, V is strong, as before
    plain = await pressed(client, grid, "V3")
    assert plain["settings"]["strength"] == pytest.approx(0.65)


@pytest.mark.parametrize(
    ("button", "vary", "words"),
    [
        ("V1", "wild", "strong or subtle"),
        ("U1", "subtle", "for V1–V4"),
        ("🔄", "subtle", "for V1–V4"),
    ],
)
async def test_vary_is_refused_in_words_where_it_means_nothing(
    client: Client, button: str, vary: str, words: str
) -> None:
    grid = await done(client, "a lighthouse")
    response = await client.post(
        "/v2/button",
        json={"buttonMessageId": grid["buttonMessageId"], "button": button, "vary": vary},
    )
    body = await response.json()
    assert response.status == 400, body
    assert words in body["msg"]


async def test_info_names_the_parameters_the_engine_honours(client: Client) -> None:
    info = await (await client.get("/v2/info")).json()
    assert info["capabilities"]["honours"] == ["--sref", "--oref"]  # the placeholder's
