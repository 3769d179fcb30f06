"""Every malformed or refused request ends in a 4xx JSON with a sentence; auth, limits and info."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from imagine.engines.placeholder import PlaceholderEngine
from imagine.settings import Settings
from tests.service.conftest import ClientFactory, submit, wait_done

Client = TestClient[Any, Any]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b"\xff\xfe", 400, "UTF-8"),
        (b"{}", 400, "'msg' is missing"),
        (b'{"msg": 5}', 400, "must be a string"),
        (b'{"msg": ""}', 400, "empty"),
        (b'{"msg": "   "}', 400, "empty"),
        (b'{"msg": "a cat", "ref": []}', 400, "'ref' must be a string"),
        (b'{"msg": "a cat", "ignorePrefilter": "maybe"}', 400, "true or false"),
        (b'{"msg": "a cat", "webhookOverride": "ftp://x"}', 400, "webhookOverride"),
        (b'{"msg": "a\\u0000cat"}', 400, "NUL"),
        (b'{"msg": "' + b"x" * 4001 + b'"}', 400, "limit is 4000"),
        (b'{"msg": "a cat --foo"}', 400, "--foo"),
        (b'{"msg": "a cat --chaos 101"}', 400, "--chaos"),
        (b'{"msg": "' + b"y" * 70000 + b'"}', 413, "too large"),
    ],
)
async def test_bad_imagine_requests_get_a_sentence(
    client: Client, body: bytes, status: int, words: str
) -> None:
    response = await client.post(
        "/v2/imagine", data=body, headers={"Content-Type": "application/json"}
    )
    data = await response.json()
    assert response.status == status, data
    assert data["success"] is False
    assert words in data["msg"]


async def test_invalid_parameter_has_its_code(client: Client) -> None:
    response = await client.post("/v2/imagine", json={"msg": "a cat --chaos 101"})
    data = await response.json()
    assert data["code"] == "INVALID_PARAMETER"
    assert data["msg"].startswith("Invalid parameter")


@pytest.mark.parametrize(
    "msg", ["a nude statue", "N.U.D.E statue", "a NuDe statue", "a nud3 statue", "n u d e"]
)
async def test_prefilter_refuses_banned_words_through_disguises(client: Client, msg: str) -> None:
    response = await client.post("/v2/imagine", json={"msg": msg})
    assert response.status == 400
    assert await response.json() == {
        "success": False,
        "msg": "Invalid phrase: 'nude'",
        "code": "BANNED_PROMPT",
    }


@pytest.mark.parametrize("flag", [True, "true"])
async def test_ignore_prefilter_skips_it(client: Client, flag: object) -> None:
    response = await client.post(
        "/v2/imagine", json={"msg": "a nude statue", "ignorePrefilter": flag}
    )
    assert response.status == 200


async def test_prefilter_matches_whole_words_only(client: Client) -> None:
    await submit(client, "the sussex coast, denuded hills")


async def test_custom_banned_words_file(make_client: ClientFactory, tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("# ours\nbroccoli\n")
    client = await make_client(banned_words_file=words)
    refused = await client.post("/v2/imagine", json={"msg": "b-r-o-c-c-o-l-i soup"})
    assert (await refused.json())["msg"] == "Invalid phrase: 'broccoli'"
    await submit(client, "a nude statue")  # the default list is replaced, not extended


async def test_auth_is_required_on_every_endpoint_but_health(make_client: ClientFactory) -> None:
    client = await make_client(api_tokens=("s3cret", "other"))
    for method, path in [
        ("POST", "/v2/imagine"),
        ("POST", "/v2/button"),
        ("GET", "/v2/message/x"),
        ("GET", "/v2/info"),
        ("GET", "/openapi.json"),
    ]:
        response = await client.request(method, path, json={"msg": "a cat"})
        assert response.status == 401, path
        assert "Bearer" in (await response.json())["msg"]
        wrong = await client.request(method, path, headers={"Authorization": "Bearer nope"})
        assert wrong.status == 401
    assert (await client.get("/health")).status == 200
    ok = await client.post(
        "/v2/imagine", json={"msg": "a cat"}, headers={"Authorization": "Bearer other"}
    )
    assert ok.status == 200


async def test_queue_full_is_429(make_client: ClientFactory) -> None:
    client = await make_client(engine=PlaceholderEngine(seconds=5), queue_limit=2)
    await submit(client, "one")
    await asyncio.sleep(0.1)  # the first job leaves the queue for the worker
    await submit(client, "two")
    await submit(client, "three")
    response = await client.post("/v2/imagine", json={"msg": "four"})
    assert response.status == 429
    assert response.headers["Retry-After"] == "60"
    assert await response.json() == {
        "success": False,
        "msg": "The queue is full: 2 jobs are waiting and the limit is 2. Try again in a minute.",
        "code": "QUEUE_FULL",
        "retryAfter": 60,
    }


async def test_progress_queue_position_and_incomplete(make_client: ClientFactory) -> None:
    client = await make_client(engine=PlaceholderEngine(seconds=3))
    first = await submit(client, "first")
    second = await submit(client, "second")
    await asyncio.sleep(0.5)
    running = await (await client.get(f"/v2/message/{first['messageId']}")).json()
    assert running["status"] == "running"
    assert 0 <= running["progress"] < 100
    queued = await (await client.get(f"/v2/message/{second['messageId']}")).json()
    assert queued == {
        "progress": 0,
        "progressImageUrl": None,
        "status": "queued",
        "queuePosition": 0,
    }
    expired = await (await client.get(f"/v2/message/{second['messageId']}?expireMins=0")).json()
    assert expired == {"progress": "incomplete"}
    bad = await client.get(f"/v2/message/{second['messageId']}?expireMins=soon")
    assert bad.status == 400


async def test_progress_image_appears_while_running(make_client: ClientFactory) -> None:
    client = await make_client(engine=PlaceholderEngine(seconds=2))
    accepted = await submit(client, "a slow one")
    seen = None
    for _ in range(100):
        data = await (await client.get(f"/v2/message/{accepted['messageId']}")).json()
        if data["progress"] != 100 and data.get("progressImageUrl"):
            seen = data["progressImageUrl"]
            break
        await asyncio.sleep(0.05)
    assert seen is not None
    assert (await client.get(URL(seen).path)).status == 200


async def test_info_reports_queue_engine_and_user_jobs(make_client: ClientFactory) -> None:
    client = await make_client(engine=PlaceholderEngine(seconds=2))
    await submit(client, "one", ref='{"user": "42"}')
    await submit(client, "two", ref='{"user": "42"}')
    info = await (await client.get("/v2/info?user=42")).json()
    assert info["engine"] == "placeholder"
    assert info["placeholder"] is True
    assert info["userUnfinished"] == 2
    assert info["queued"] + info["running"] == 2
    other = await (await client.get("/v2/info?user=43")).json()
    assert other["userUnfinished"] == 0


async def test_openapi_describes_every_route(client: Client) -> None:
    spec = await (await client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    routes = set()
    for resource in client.app.router.resources():
        info = resource.get_info()
        routes.add(info.get("formatter") or info.get("path"))
    assert routes == set(spec["paths"])
    for path, methods in spec["paths"].items():
        for method in methods:
            matched = [
                r
                for r in client.app.router.routes()
                if r.method.lower() == method
                and (r.resource.get_info().get("formatter") or r.resource.get_info().get("path"))
                == path
            ]
            assert matched, (method, path)


async def test_server_refuses_open_binding_without_tokens(settings: Settings) -> None:
    from imagine.server import ConfigError, check_binding

    with pytest.raises(ConfigError, match="IMAGINE_API_TOKENS"):
        check_binding(settings.with_(host="0.0.0.0"))
    check_binding(settings.with_(host="0.0.0.0", api_tokens=("t",)))
    check_binding(settings.with_(host="127.0.0.1"))


async def test_job_results_are_kept_after_done(client: Client) -> None:
    accepted = await submit(client, "a lamp")
    done = await wait_done(client, accepted["messageId"])
    again = await wait_done(client, accepted["messageId"])
    assert done == again


@pytest.mark.parametrize(
    "msg", ["a {na,zz}ked cat", "a cat https://naked on a table", "a cat --no nud3"]
)
async def test_prefilter_reads_what_the_engine_will_read(client: Client, msg: str) -> None:
    response = await client.post("/v2/imagine", json={"msg": msg})
    data = await response.json()
    assert response.status == 400, data
    assert data["code"] == "BANNED_PROMPT"


async def test_a_user_cannot_queue_more_than_the_cap(make_client: ClientFactory) -> None:
    client = await make_client(engine=PlaceholderEngine(seconds=5), max_jobs_per_user=5)
    ref = '{"user": "9"}'
    await submit(client, "{a,b,c} cat", ref=ref)
    refused = await client.post("/v2/imagine", json={"msg": "{d,e,f} cat", "ref": ref})
    body = await refused.json()
    assert refused.status == 429
    assert "You have 3 unfinished jobs and this adds 3; the limit is 5" in body["msg"]
    asked = await client.post("/v2/imagine", json={"msg": "a dog", "ref": ref, "maxUnfinished": 3})
    assert asked.status == 429  # a client (the bot) may ask for a lower cap
    assert (await client.post("/v2/imagine", json={"msg": "a dog", "ref": ref})).status == 200


async def test_at_most_five_image_links(make_client: ClientFactory) -> None:
    client = await make_client(
        url_hosts=("refused.invalid",)
    )  # never fetch, even if the check broke
    links = " ".join(f"https://example.com/{n}.png" for n in range(6))
    response = await client.post("/v2/imagine", json={"msg": f"{links} a cat"})
    data = await response.json()
    assert response.status == 400
    assert "At most 5 image links" in data["msg"]


async def test_deeply_nested_json_is_a_400(client: Client) -> None:
    response = await client.post(
        "/v2/imagine", data=b"[" * 30000, headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert "nested" in (await response.json())["msg"]
