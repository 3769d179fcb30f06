"""The whole midjourney-proxy flow as new-api drives it, on the placeholder engine and on the real
diffusers engine (a tiny pipeline, and a tiny captioner for describe): imagine → poll → U2 by
customId → a variation by index → describe → blend → image-seed → list-by-condition → a banned
word → Custom Zoom and Vary (Region) through the modal."""

from __future__ import annotations

import io
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from PIL import Image
from yarl import URL

from imagine.app import create_app
from imagine.engines.placeholder import PlaceholderEngine
from imagine.settings import Settings
from tests.contract.newapi import NewApi, data_url, normal_action

Client = TestClient[Any, Any]
SECRET = "channel-key"


@pytest.fixture(params=["placeholder", "diffusers"])
async def relay(request: pytest.FixtureRequest, aiohttp_client: Any, settings: Settings) -> NewApi:
    chosen = settings.with_(api_tokens=(SECRET,))
    engine = None
    if request.param == "placeholder":
        engine = PlaceholderEngine()
    else:
        from tests.engines.conftest import diffusers_settings

        models = request.getfixturevalue("tiny_models")
        caption = request.getfixturevalue("tiny_captioner")
        chosen = diffusers_settings(chosen, models.pipeline).with_(caption_model=str(caption))
    client: Client = await aiohttp_client(create_app(chosen, engine=engine))
    return NewApi(client, SECRET)


async def image_of(relay: NewApi, url: str) -> Image.Image:
    response = await relay.client.get(URL(url).path)  # new-api's forward: no auth, typed
    assert response.status == 200
    assert response.content_type.startswith("image/")
    return Image.open(io.BytesIO(await response.read()))


@pytest.mark.slow
async def test_the_relay_flow_end_to_end(relay: NewApi) -> None:
    task_id = await relay.accepted("imagine", {"prompt": "a lighthouse at dusk --ar 3:2",
                                               "state": "order-7", "base64Array": []})  # fmt: skip
    grid = await relay.finished(task_id)
    assert grid["status"] == "SUCCESS"
    assert grid["action"] == "IMAGINE"
    assert grid["state"] == "order-7"
    assert grid["prompt"].startswith("a lighthouse")
    assert grid["submitTime"] <= grid["startTime"] <= grid["finishTime"]
    assert (await image_of(relay, grid["imageUrl"])).width > 0
    actions = sorted(normal_action(b["customId"]) for b in grid["buttons"])
    assert actions == sorted([("UPSCALE", i) for i in range(1, 5)]
                             + [("VARIATION", i) for i in range(1, 5)] + [("REROLL", 1)])  # fmt: skip
    assert await relay.fetch(task_id) == grid

    # U2 by its customId (new-api forwards the body unchanged)
    u2 = await relay.accepted("action", {"taskId": task_id,
                                         "customId": relay.button(grid, ":upsample::2")})  # fmt: skip
    upscale = await relay.finished(u2)
    assert upscale["action"] == "UPSCALE"
    assert upscale["status"] == "SUCCESS"
    after = {normal_action(b["customId"])[0] for b in upscale["buttons"]}
    assert {"HIGH_VARIATION", "LOW_VARIATION", "ZOOM", "CUSTOM_ZOOM", "PAN"} <= after
    again = await relay.submit("action", {"taskId": task_id,
                                          "customId": relay.button(grid, ":upsample::2")})  # fmt: skip
    assert again["code"] == 21
    assert again["result"] == u2
    assert again["properties"]["status"] == "SUCCESS"
    assert again["properties"]["imageUrl"]

    # a variation by index, through the older change route
    v1 = await relay.accepted("change", {"taskId": task_id, "action": "VARIATION", "index": 1})
    assert (await relay.finished(v1))["action"] == "VARIATION"

    # describe: four prompts, numbered, in finalPrompt
    picture = Image.new("RGB", (96, 64), (200, 90, 30))
    described = await relay.finished(
        await relay.accepted("describe", {"base64": data_url(picture)})
    )
    assert described["status"] == "SUCCESS"
    assert described["action"] == "DESCRIBE"
    final = described["properties"]["finalPrompt"]
    assert [line.split(" ", 1)[0] for line in final.split("\n\n")] == ["1️⃣", "2️⃣", "3️⃣", "4️⃣"]
    assert final.count("--ar 3:2") == 4

    # blend: two data URLs, a portrait grid
    blend = await relay.finished(await relay.accepted("blend", {
        "base64Array": [data_url(picture), data_url(Image.new("RGB", (64, 64), "navy"))],
        "dimensions": "PORTRAIT"}))  # fmt: skip
    assert blend["status"] == "SUCCESS"
    assert blend["action"] == "BLEND"
    tile = await image_of(relay, blend["properties"]["imageUrls"][0])
    assert tile.width * 3 == tile.height * 2

    # image-seed: a digit string that renders the same grid again
    seed = await relay.client.get(f"/mj/task/{task_id}/image-seed", headers=relay.headers)
    answer = await seed.json()
    assert seed.status == 200
    assert answer["code"] == 1
    assert answer["result"].isdigit()

    # the poller asks for many ids at once, unknown ones included
    listed = await relay.poll([task_id, u2, "1689231405853400", v1])
    assert [t["id"] for t in listed] == [task_id, u2, v1]

    # Custom Zoom: 21 and a modal task, then the prompt with --zoom
    zoom = await relay.submit("action", {"taskId": u2,
                                         "customId": relay.button(upscale, "CustomZoom")})  # fmt: skip
    assert zoom["code"] == 21
    assert zoom["description"] == "Waiting for window confirm"
    assert "--zoom 2" in zoom["properties"]["finalPrompt"]
    modal = await relay.fetch(zoom["result"])
    assert modal["status"] == "MODAL"
    accepted = await relay.submit("modal", {"taskId": zoom["result"],
                                            "prompt": "a lighthouse at night --zoom 1.5"})  # fmt: skip
    assert accepted["code"] in (1, 22)
    assert accepted["result"] == zoom["result"]
    zoomed = await relay.finished(zoom["result"])
    assert zoomed["status"] == "SUCCESS"
    assert zoomed["action"] == "CUSTOM_ZOOM"
    assert zoomed["prompt"] == "a lighthouse at night --zoom 1.5"

    # Vary (Region): 21, then the prompt and a mask of the area to repaint
    region = await relay.submit("action", {"taskId": u2,
                                           "customId": relay.button(upscale, "Inpaint")})  # fmt: skip
    assert region["code"] == 21
    source = await image_of(relay, upscale["imageUrl"])
    mask = Image.new("L", source.size, 0)
    mask.paste(255, (0, 0, source.width // 2, source.height // 2))
    await relay.accepted("modal", {"taskId": region["result"], "prompt": "a red boat",
                                   "maskBase64": data_url(mask)})  # fmt: skip
    varied = await relay.finished(region["result"])
    assert varied["status"] == "SUCCESS"
    assert varied["action"] == "INPAINT"


async def test_a_banned_word_is_code_24_with_the_word(relay: NewApi) -> None:
    answer = await relay.submit("imagine", {"prompt": "a nude statue"})
    assert answer["code"] == 24
    assert answer["result"] is None
    assert answer["properties"]["bannedWord"] == "nude"
    assert "nude" in answer["properties"]["promptEn"]


async def test_shorten_reads_the_prompt_with_the_engines_tokenizer(relay: NewApi) -> None:
    words = " ".join(f"word{n}" for n in range(60))
    long_prompt = f"a very highly detailed portrait of an old fisherman, {words} --ar 2:3"
    done = await relay.finished(await relay.accepted("shorten", {"prompt": long_prompt}))
    assert done["status"] == "SUCCESS"
    assert done["action"] == "SHORTEN"
    prompts = done["properties"]["prompts"]
    assert len(prompts) == 5
    assert len(set(prompts)) == 5
    assert all(p.endswith("--ar 2:3") for p in prompts)
    assert all(len(p) < len(long_prompt) for p in prompts)
    analysis = done["properties"]["analysis"]
    assert analysis["limit"] > 0
    assert any(w["cut"] for w in analysis["words"])  # past the limit: never read
    assert "fisherman" in prompts[-1]  # the heaviest words stay
    assert [b["customId"] for b in done["buttons"]] == [
        f"MJ::Job::PromptAnalyzer::{n}" for n in range(1, 6)
    ]
    imagined = await relay.accepted("action", {"taskId": done["id"],
                                               "customId": "MJ::Job::PromptAnalyzer::5"})  # fmt: skip
    assert (await relay.finished(imagined))["prompt"] == prompts[4]
