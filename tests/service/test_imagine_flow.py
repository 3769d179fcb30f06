"""A client's whole loop: imagine → poll → grid → buttons, through the real app and SQLite."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from PIL import ImageChops, ImageStat
from yarl import URL

from imagine.jobs import GRID_BUTTONS, UPSCALE_BUTTONS
from tests.backends import on_every_backend as backend  # noqa: F401 (a fixture: every test on each)
from tests.service.conftest import fetch_image, press, submit, wait_done

Client = TestClient[Any, Any]


def differ(a: Any, b: Any) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean)


async def test_imagine_returns_message_id_then_a_grid_with_nine_buttons(client: Client) -> None:
    accepted = await submit(client, "a lighthouse at dusk", ref="order-7")
    assert accepted["success"] is True
    assert accepted["messageId"].isdigit()
    assert len(accepted["messageId"]) == 33
    assert accepted["createdAt"].endswith("Z")

    done = await wait_done(client, accepted["messageId"])
    assert done["buttons"] == list(GRID_BUTTONS)
    assert done["type"] == "imagine"
    assert done["content"] == "a lighthouse at dusk"
    assert done["ref"] == "order-7"
    assert done["originatingMessageId"] == accepted["messageId"]
    assert done["buttonMessageId"] != accepted["messageId"]
    assert len(done["imageUrls"]) == 4
    assert len(done["seeds"]) == 4
    grid = await fetch_image(client, done["imageUrl"])
    tiles = [await fetch_image(client, url) for url in done["imageUrls"]]
    assert grid.size == (tiles[0].width * 2, tiles[0].height * 2)
    # the grid is the four tiles, U1 U2 / U3 U4
    top_right = grid.crop((tiles[0].width, 0, grid.width, tiles[0].height))
    # (the grid is lossy WebP: the right tile is close, the others far)
    assert differ(top_right, tiles[1]) < 8
    assert differ(top_right, tiles[0]) > 3 * differ(top_right, tiles[1])


async def test_images_are_immutable_and_cacheable(client: Client) -> None:
    done = await wait_done(client, (await submit(client, "a red fox"))["messageId"])
    response = await client.get(URL(done["imageUrl"]).path)
    assert response.status == 200
    assert "immutable" in response.headers["Cache-Control"]
    etag = response.headers["ETag"]
    again = await client.get(URL(done["imageUrl"]).path, headers={"If-None-Match": etag})
    assert again.status == 304


async def test_odd_image_paths_are_404_not_500(client: Client) -> None:
    done = await wait_done(client, (await submit(client, "a red fox"))["messageId"])
    path = URL(done["imageUrl"]).path
    job_dir, name = path.rsplit("/", 1)
    for odd in (f"{path}%0A", f"{job_dir}%0A/{name}", f"{job_dir}/.{name}", f"{job_dir}/..%2F{name}",
                f"{job_dir}/{name[:-4]}.JPG", f"{job_dir}/grid.gif"):  # fmt: skip
        response = await client.get(odd)
        assert response.status == 404, odd
        assert (await response.json())["msg"] == "No such image."


async def test_u_gives_the_tile_with_post_upscale_buttons_and_only_once(client: Client) -> None:
    grid = await wait_done(client, (await submit(client, "a red fox --ar 3:2"))["messageId"])
    first = await press(client, grid["buttonMessageId"], "U2")
    upscale = await wait_done(client, first["messageId"])
    assert upscale["type"] == "upscale"
    assert upscale["buttons"] == list(UPSCALE_BUTTONS)  # 3:2 is not square: Make Square offered
    tile = await fetch_image(client, grid["imageUrls"][1])
    single = await fetch_image(client, upscale["imageUrl"])
    assert single.size == tile.size
    assert differ(single, tile) == 0  # U regenerates nothing

    again = await client.post(
        "/v2/button", json={"buttonMessageId": grid["buttonMessageId"], "button": "U2"}
    )
    body = await again.json()
    assert again.status == 409
    assert body["code"] == "ALREADY_REQUESTED_UPSCALE"
    assert body["messageId"] == first["messageId"]


async def test_square_upscale_offers_no_make_square(client: Client) -> None:
    grid = await wait_done(client, (await submit(client, "a blue bird"))["messageId"])
    upscale = await wait_done(
        client, (await press(client, grid["buttonMessageId"], "U1"))["messageId"]
    )
    assert "Make Square" not in upscale["buttons"]
    assert "Zoom Out 2x" in upscale["buttons"]


async def test_variation_and_reroll_give_new_grids(client: Client) -> None:
    grid = await wait_done(client, (await submit(client, "a castle"))["messageId"])
    variation = await wait_done(
        client, (await press(client, grid["buttonMessageId"], "V3"))["messageId"]
    )
    reroll = await wait_done(
        client, (await press(client, grid["buttonMessageId"], "🔄"))["messageId"]
    )
    assert variation["type"] == "variation"
    assert variation["buttons"] == list(GRID_BUTTONS)
    assert reroll["buttons"] == list(GRID_BUTTONS)
    assert reroll["content"] == "a castle"
    assert reroll["seeds"] != grid["seeds"]
    original = await fetch_image(client, grid["imageUrl"])
    again = await fetch_image(client, reroll["imageUrl"])
    assert differ(original, again) > 5
    # variations stay close to their tile (img2img), closer than the grid's other tiles (on
    # average: each tile has its own random seed)
    source = await fetch_image(client, grid["imageUrls"][2])
    varied = [await fetch_image(client, url) for url in variation["imageUrls"]]
    others = [await fetch_image(client, grid["imageUrls"][n]) for n in (0, 1, 3)]
    near = sum(differ(v, source) for v in varied) / len(varied)
    far = sum(differ(o, source) for o in others) / len(others)
    assert near < far


async def test_every_post_upscale_button_works(client: Client) -> None:
    grid = await wait_done(client, (await submit(client, "a harbour --ar 16:9"))["messageId"])
    upscale = await wait_done(
        client, (await press(client, grid["buttonMessageId"], "U4"))["messageId"]
    )
    source = await fetch_image(client, upscale["imageUrl"])
    for button in upscale["buttons"]:
        if button == "Vary (Region)":
            continue  # it takes a mask: pressed with one in tests/contract
        result = await wait_done(
            client, (await press(client, upscale["buttonMessageId"], button))["messageId"]
        )
        assert result["status"] == "done", (button, result)
        image = await fetch_image(client, result["imageUrl"])
        if button.startswith("Upscale"):
            assert image.size == (source.width * 2, source.height * 2)  # Subtle and Creative
            assert not [b for b in result["buttons"] if b.startswith("Upscale")]
        elif button in ("⬅️", "➡️"):
            tile = await fetch_image(client, result["imageUrls"][0])
            assert tile.width / tile.height > source.width / source.height * 1.3
        elif button in ("⬆️", "⬇️"):
            tile = await fetch_image(client, result["imageUrls"][0])
            assert tile.width / tile.height < source.width / source.height / 1.3
        elif button == "Make Square":
            tile = await fetch_image(client, result["imageUrls"][0])
            assert abs(tile.width - tile.height) <= 8
        else:
            assert len(result["imageUrls"]) == 4


async def test_a_button_the_message_lacks_is_refused(client: Client) -> None:
    grid = await wait_done(client, (await submit(client, "a tree"))["messageId"])
    response = await client.post(
        "/v2/button", json={"buttonMessageId": grid["buttonMessageId"], "button": "Zoom Out 2x"}
    )
    body = await response.json()
    assert response.status == 400
    assert body["code"] == "BUTTON_NOT_FOUND"
    assert "U1" in body["msg"]
    unknown = await client.post("/v2/button", json={"buttonMessageId": "nope", "button": "U1"})
    assert unknown.status == 404
    assert (await unknown.json())["success"] is False


async def test_same_seed_gives_the_same_grid_and_aspect_is_honoured(client: Client) -> None:
    first = await wait_done(
        client, (await submit(client, "a cat --seed 42 --ar 16:9"))["messageId"]
    )
    second = await wait_done(
        client, (await submit(client, "a cat --seed 42 --ar 16:9"))["messageId"]
    )
    assert first["seeds"] == second["seeds"]
    a = await fetch_image(client, first["imageUrl"])
    b = await fetch_image(client, second["imageUrl"])
    assert differ(a, b) == 0
    tile = await fetch_image(client, first["imageUrls"][0])
    assert abs(tile.width / tile.height - 16 / 9) < 0.05


async def test_unknown_message_is_404_json(client: Client) -> None:
    response = await client.get("/v2/message/does-not-exist")
    assert response.status == 404
    assert (await response.json())["success"] is False


async def test_pans_stop_at_four_to_one(client: Client) -> None:
    grid = await wait_done(client, (await submit(client, "a long wall --ar 3:1"))["messageId"])
    upscale = await wait_done(
        client, (await press(client, grid["buttonMessageId"], "U1"))["messageId"]
    )
    assert "⬆️" in upscale["buttons"]
    assert "⬅️" not in upscale["buttons"]  # 3:1 widened by half would be 4.5:1
    assert "➡️" not in upscale["buttons"]
