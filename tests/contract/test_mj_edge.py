"""The midjourney-proxy edge beyond the happy path: one set of jobs under both contracts, tenants
apart, codes for every refusal (never a 5xx, never a body that is not JSON), the header and CORS a
browser front end needs, big data-URL bodies, the speed prefixes, and notifyHook."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image
from yarl import URL

from imagine.keys import SERVICE
from imagine.webhooks import SIGNATURE_HEADER, sign
from tests.backends import on_both_databases as backend  # noqa: F401 (a fixture: every test on each)
from tests.contract.newapi import NewApi, data_url, decode_envelope, decode_task
from tests.service.conftest import ClientFactory, press, submit, wait_done

A, B = "token-a", "token-b"


async def test_a_v2_job_is_a_task_and_a_task_is_a_v2_message(make_client: ClientFactory) -> None:
    client = await make_client(api_tokens=(A,))
    v2 = {"Authorization": f"Bearer {A}"}
    relay = NewApi(client, A)
    made = await (await client.post("/v2/imagine", json={"msg": "a fox"}, headers=v2)).json()
    task = await relay.finished(made["messageId"])
    assert task["action"] == "IMAGINE"
    assert task["prompt"] == "a fox"
    u3 = await relay.accepted("action", {"taskId": task["id"],
                                         "customId": relay.button(task, ":upsample::3")})  # fmt: skip
    response = await client.get(f"/v2/message/{u3}", headers=v2)
    assert (await response.json())["progress"] in (100, *range(100))
    # the other way round: a task made here, pressed through v2
    tid = await relay.accepted("imagine", {"prompt": "an owl"})
    async with asyncio.timeout(20):
        while (message := await (await client.get(f"/v2/message/{tid}", headers=v2)).json())[
            "progress"
        ] != 100:
            await asyncio.sleep(0.02)
    done = message["response"]
    assert done["content"] == "an owl"
    assert "V2" in done["buttons"]
    pressed = await (await client.post("/v2/button", headers=v2, json={
        "buttonMessageId": done["buttonMessageId"], "button": "V2"})).json()  # fmt: skip
    assert (await relay.finished(pressed["messageId"]))["action"] == "VARIATION"


async def test_tenants_stay_apart_across_both_contracts(make_client: ClientFactory) -> None:
    client = await make_client(api_tokens=(A, B))
    a, b = NewApi(client, A), NewApi(client, B)
    task_id = await a.accepted("imagine", {"prompt": "a secret garden"})
    task = await a.finished(task_id)
    assert await b.poll([task_id]) == []
    response = await client.get(f"/mj/task/{task_id}/fetch", headers=b.headers)
    assert response.status == 404
    assert decode_envelope(await response.json())["code"] == 3
    refused = await b.submit("action", {"taskId": task_id,
                                        "customId": a.button(task, ":upsample::1")})  # fmt: skip
    assert refused["code"] == 3
    v2 = await client.get(f"/v2/message/{task_id}", headers={"Authorization": f"Bearer {B}"})
    assert v2.status == 404
    assert (await client.get("/mj/task/list", headers=b.headers)).status == 200
    assert await (await client.get("/mj/task/list", headers=b.headers)).json() == []
    # a token may come as a bare Authorization header too (trueai's proxy takes it so)
    bare = await client.post("/mj/task/list-by-condition", json={"ids": [task_id]},
                             headers={"Authorization": A})  # fmt: skip
    assert [t["id"] for t in await bare.json()] == [task_id]
    wrong = await client.post("/mj/submit/imagine", json={"prompt": "x"},
                              headers={"mj-api-secret": "nope"})  # fmt: skip
    assert wrong.status == 401
    assert "mj-api-secret" in (await wrong.json())["description"]


@pytest.mark.parametrize(
    ("kind", "body", "code", "words"),
    [
        ("imagine", {"prompt": ""}, 4, "empty"),
        ("imagine", {"prompt": "a cat", "base64Array": ["data:image/png;base64,!!"]}, 4, "base64"),
        ("imagine", {"prompt": "a cat", "base64Array": "nope"}, 4, "list of data URLs"),
        ("imagine", {"prompt": "a cat", "botType": "DALL_E"}, 4, "botType"),
        ("imagine", {"prompt": "a cat --ar 9:1:1"}, 4, "ar"),
        ("change", {"taskId": "1", "action": "UPSCALE", "index": 2}, 3, "No task"),
        ("change", {"taskId": "", "action": "UPSCALE", "index": 2}, 4, "taskId"),
        ("simple-change", {"content": "123 X9"}, 4, "U1–U4"),
        ("action", {"taskId": "12", "customId": "MJ::BOOKMARK::x"}, 3, "No task"),
        ("modal", {"taskId": "42", "prompt": "x"}, 3, "No task waits"),
        ("describe", {}, 4, "Send the image"),
        ("blend", {"base64Array": []}, 4, "2 to 5"),
        ("shorten", {"prompt": "   "}, 4, "empty"),
    ],
)
async def test_refusals_are_http_200_with_a_code_and_a_sentence(
    make_client: ClientFactory, kind: str, body: dict[str, Any], code: int, words: str
) -> None:
    client = await make_client()
    response = await client.post(f"/mj/submit/{kind}", json=body)
    assert response.status == 200
    answer = decode_envelope(await response.json())
    assert answer["code"] == code, answer
    assert words in answer["description"], answer


async def test_a_bad_customid_on_a_real_task_says_so(make_client: ClientFactory) -> None:
    relay = NewApi(await make_client())
    task = await relay.finished(await relay.accepted("imagine", {"prompt": "a tree"}))
    for custom_id in ("MJ::BOOKMARK::abc", "MJ::JOB::upsample::9::x", "U1"):
        answer = await relay.submit("action", {"taskId": task["id"], "customId": custom_id})
        assert answer["code"] == 4, answer
        assert "customId" in answer["description"], answer
    other = "MJ::JOB::upsample::1::0000000000000"
    answer = await relay.submit("action", {"taskId": task["id"], "customId": other})
    assert answer["code"] == 4
    assert "another task" in answer["description"]


async def test_queue_full_and_the_user_cap_are_code_23(make_client: ClientFactory) -> None:
    client = await make_client(queue_limit=2, placeholder_seconds=30.0, max_concurrent=1)
    relay = NewApi(client)
    answers = await asyncio.gather(
        *(relay.submit("imagine", {"prompt": f"a bird {n}"}) for n in range(6))
    )
    codes = sorted(a["code"] for a in answers)
    assert codes.count(23) >= 3, codes
    assert set(codes) <= {1, 22, 23}, codes
    full = next(a for a in answers if a["code"] == 23)
    assert "queue is full" in full["description"]
    capped = await make_client(max_jobs_per_user=1, placeholder_seconds=30.0)
    user = json.dumps({"user": "42"})
    first = await NewApi(capped).submit("imagine", {"prompt": "one", "state": user})
    second = await NewApi(capped).submit("imagine", {"prompt": "two", "state": user})
    assert first["code"] in (1, 22)
    assert second["code"] == 23
    assert "unfinished" in second["description"]


async def test_a_second_submit_of_one_modal_is_refused(make_client: ClientFactory) -> None:
    relay = NewApi(await make_client())
    grid = await relay.finished(await relay.accepted("imagine", {"prompt": "a ship"}))
    up = await relay.finished(await relay.accepted(
        "action", {"taskId": grid["id"], "customId": relay.button(grid, ":upsample::1")}))  # fmt: skip
    opened = await relay.submit("action", {"taskId": up["id"], "enableRemix": True,
                                           "customId": relay.button(up, "high_variation")})  # fmt: skip
    assert opened["code"] == 21
    assert opened["properties"]["remix"] is True
    both = await asyncio.gather(
        relay.submit("modal", {"taskId": opened["result"], "prompt": "a red ship"}),
        relay.submit("modal", {"taskId": opened["result"], "prompt": "a blue ship"}),
    )
    assert sorted(a["code"] for a in both)[0] in (1, 22)
    assert sorted(a["code"] for a in both)[1] == 21, both  # the task exists already
    done = await relay.finished(opened["result"])
    assert done["prompt"] in ("a red ship", "a blue ship")
    assert done["action"] == "HIGH_VARIATION"
    # without enableRemix the same button runs at once (new-api reads any 21 as 1)
    direct = await relay.submit("action", {"taskId": up["id"],
                                           "customId": relay.button(up, "low_variation")})  # fmt: skip
    assert direct["code"] in (1, 22)


async def test_cors_preflight_and_headers_for_browser_front_ends(
    make_client: ClientFactory,
) -> None:
    client = await make_client(api_tokens=(A,))
    preflight = await client.options("/mj/submit/imagine", headers={
        "Origin": "https://chat.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "mj-api-secret, content-type"})  # fmt: skip
    assert preflight.status == 204
    assert "mj-api-secret" in preflight.headers["Access-Control-Allow-Headers"]
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    relay = NewApi(client, A)
    task = await relay.finished(await relay.accepted("imagine", {"prompt": "a moth"}))
    image = await client.get(URL(task["imageUrl"]).path, headers={"Origin": "https://chat.example"})
    assert image.status == 200
    assert image.headers["Access-Control-Allow-Origin"] == "*"
    locked = await make_client(cors_origins=("https://mine.example",))
    other = await locked.options("/mj/task/list", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})  # fmt: skip
    assert "Access-Control-Allow-Origin" not in other.headers


async def test_data_url_bodies_up_to_megabytes_and_a_too_big_one(
    make_client: ClientFactory,
) -> None:
    relay = NewApi(await make_client())
    noisy = Image.effect_noise((900, 900), 100).convert("RGB")  # ~2 MB as PNG, ~2.7 MB base64
    big = data_url(noisy)
    assert len(big) > 2_000_000
    task_id = await relay.accepted("imagine", {"prompt": "like this", "base64Array": [big]})
    assert (await relay.finished(task_id))["status"] == "SUCCESS"
    huge = await relay.client.post("/mj/submit/imagine", data=io.BytesIO(b"{" + b" " * (30 << 20) + b"}"),
                                   headers={"Content-Type": "application/json"})  # fmt: skip
    answer = decode_envelope(await huge.json())
    assert huge.status == 200
    assert answer["code"] == 4
    assert "too large" in answer["description"]
    # the v2 prompt routes keep their small limit
    v2 = await relay.client.post("/v2/imagine", json={"msg": "x" * 70_000})
    assert v2.status == 413


async def test_speed_prefixes_set_the_mode(make_client: ClientFactory) -> None:
    client = await make_client()
    for prefix, mode in (("/mj-relax", "RELAX"), ("/mj-turbo", "TURBO"), ("/mj-fast", "FAST")):
        relay = NewApi(client, prefix=prefix)
        task = await relay.finished(await relay.accepted("imagine", {"prompt": "a wave"}))
        assert task["mode"] == mode
        assert (await NewApi(client).fetch(task["id"]))["mode"] == mode


async def test_notify_hook_gets_the_task_on_start_and_end(make_client: ClientFactory) -> None:
    bodies: list[dict[str, Any]] = []
    signatures: list[tuple[bytes, str | None]] = []

    async def hook(request: web.Request) -> web.Response:
        raw = await request.read()
        bodies.append(json.loads(raw))
        signatures.append((raw, request.headers.get(SIGNATURE_HEADER)))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/notify", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        relay = NewApi(await make_client(webhook_secret="s", placeholder_seconds=0.5))
        url = str(server.make_url("/notify"))
        task_id = await relay.accepted("imagine", {"prompt": "a bell", "notifyHook": url,
                                                   "state": "s1"})  # fmt: skip
        done = await relay.finished(task_id)
        async with asyncio.timeout(10):
            while not bodies or bodies[-1]["status"] != "SUCCESS":
                await asyncio.sleep(0.02)
        statuses = [b["status"] for b in bodies]
        assert statuses[-1] == "SUCCESS"
        assert set(statuses) <= {"IN_PROGRESS", "SUCCESS"}
        assert statuses == sorted(statuses, key=["IN_PROGRESS", "SUCCESS"].index)
        for body in bodies:
            decode_task(body)
        assert bodies[-1] == done
        assert bodies[-1]["state"] == "s1"
        assert all(sig == sign("s", raw) for raw, sig in signatures)
    finally:
        await server.close()


async def test_v2_gets_the_new_tools_too(make_client: ClientFactory) -> None:
    client = await make_client()
    naughty = await (await client.post("/v2/is-this-naughty", json={"msg": "a n.u.d.e man"})).json()
    clean = await (await client.post("/v2/is-this-naughty", json={"msg": "a calm lake"})).json()
    assert clean == {"isNaughty": False, "phrase": None}
    assert naughty["isNaughty"] in (True, False)  # the prefilter decides; the shape is fixed
    assert (await client.post("/v2/info")).status == 200
    toggled = await (await client.post("/v2/settings", json={"settingsToggle": "relax"})).json()
    assert toggled["settings"]["speed"] == "relax"
    relay = NewApi(client)
    done = await wait_done(client, (await submit(client, "a kettle"))["messageId"])
    assert (await relay.fetch(done["originatingMessageId"]))["mode"] == "RELAX"
    seed = await (
        await client.post("/v2/seed", json={"messageId": done["originatingMessageId"]})
    ).json()
    assert seed["seed"] == done["seeds"][0]
    up = await wait_done(client, (await press(client, done["buttonMessageId"], "U1"))["messageId"])
    up_seed = await client.post("/v2/seed", json={"messageId": up["originatingMessageId"]})
    assert (await up_seed.json())["seed"] == done["seeds"][0]
    zoom = await client.post("/v2/button", json={"buttonMessageId": up["buttonMessageId"],
                                                 "button": "Custom Zoom", "zoom": 1.5, "ar": "16:9",
                                                 "prompt": "a kettle on a stove"})  # fmt: skip
    zoomed = await wait_done(client, (await zoom.json())["messageId"])
    assert zoomed["status"] == "done"
    assert zoomed["content"] == "a kettle on a stove"
    bad = await client.post("/v2/button", json={"buttonMessageId": up["buttonMessageId"],
                                                "button": "Custom Zoom", "zoom": 3})  # fmt: skip
    assert bad.status == 400
    assert "zoom" in (await bad.json())["msg"]
    no_mask = await client.post("/v2/button", json={"buttonMessageId": up["buttonMessageId"],
                                                    "button": "Vary (Region)"})  # fmt: skip
    assert no_mask.status == 400
    assert "mask" in (await no_mask.json())["msg"]
    picture = data_url(Image.new("RGB", (64, 64), "teal"))
    described = await client.post("/v2/describe", json={"base64": picture})
    result = await wait_done(client, (await described.json())["messageId"])
    assert isinstance(result["content"], list)
    assert len(result["content"]) == 4


async def test_one_u_pressed_fifty_times_through_both_contracts_is_one_upscale(
    make_client: ClientFactory,
) -> None:
    client = await make_client()
    relay = NewApi(client)
    task = await relay.finished(await relay.accepted("imagine", {"prompt": "a lamp"}))
    custom_id = relay.button(task, ":upsample::3")
    v2_body = {"buttonMessageId": task["properties"]["messageHash"], "button": "U3"}

    async def by_mj() -> str | None:
        answer = await relay.submit("action", {"taskId": task["id"], "customId": custom_id})
        assert answer["code"] in (1, 21, 22), answer
        return str(answer["result"])

    async def by_v2() -> str | None:
        response = await client.post("/v2/button", json=v2_body)
        data = await response.json()
        assert response.status in (200, 409), data
        return str(data["messageId"])

    results = await asyncio.gather(*(by_mj() if n % 2 else by_v2() for n in range(50)))
    assert len(set(results)) == 1  # every press names the one upscale
    (upscale,) = await relay.poll(list(set(results)))
    assert upscale["action"] == "UPSCALE"


async def test_a_burst_of_submits_with_data_urls_keeps_every_task(
    make_client: ClientFactory,
) -> None:
    relay = NewApi(await make_client())
    picture = data_url(Image.new("RGB", (64, 64), "olive"))
    answers = await asyncio.gather(*(
        relay.submit("imagine", {"prompt": f"a pond {n}", "base64Array": [picture]})
        for n in range(60)
    ))  # fmt: skip
    ids = [a["result"] for a in answers if a["code"] in (1, 22)]
    assert len(ids) == 60
    assert len(set(ids)) == 60
    listed = await relay.poll(ids)
    assert sorted(t["id"] for t in listed) == sorted(ids)
    assert all(t["prompt"].startswith("a pond") for t in listed)


async def test_a_region_grid_rerolls_its_prompt_not_its_mask(make_client: ClientFactory) -> None:
    client = await make_client()
    relay = NewApi(client)
    grid = await relay.finished(await relay.accepted("imagine", {"prompt": "a field"}))
    up = await relay.finished(await relay.accepted(
        "action", {"taskId": grid["id"], "customId": relay.button(grid, ":upsample::1")}))  # fmt: skip
    opened = await relay.submit("action", {"taskId": up["id"],
                                           "customId": relay.button(up, "Inpaint")})  # fmt: skip
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 32))
    region = await relay.finished(await relay.accepted(
        "modal", {"taskId": opened["result"], "maskBase64": data_url(mask)}))  # fmt: skip
    assert region["prompt"] == "a field"  # an empty modal prompt keeps the offered one
    rerolled = await relay.finished(await relay.accepted(
        "action", {"taskId": region["id"], "customId": relay.button(region, "reroll")}))  # fmt: skip
    assert rerolled["status"] == "SUCCESS"
    store = client.app[SERVICE].store
    assert (await store.get(rerolled["id"])).inputs == []


async def test_a_modal_never_submitted_is_forgotten_after_a_day(
    make_client: ClientFactory,
) -> None:
    client = await make_client()
    relay = NewApi(client)
    grid = await relay.finished(await relay.accepted("imagine", {"prompt": "a hill"}))
    up = await relay.finished(await relay.accepted(
        "action", {"taskId": grid["id"], "customId": relay.button(grid, ":upsample::1")}))  # fmt: skip
    zoom = relay.button(up, "CustomZoom")
    old = (await relay.submit("action", {"taskId": up["id"], "customId": zoom}))["result"]
    store = client.app[SERVICE].store
    await store.drop_modals_before(datetime.now(UTC) + timedelta(seconds=1))  # as a day later
    assert await relay.poll([old]) == []
    late = await relay.submit("modal", {"taskId": old, "prompt": "a hill --zoom 1.2"})
    assert late["code"] == 3
