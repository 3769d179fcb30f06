"""Who may see what, without a browser: signed links (forged, edited, expired, another
purpose), the API token on the bot's calls, the operator token on /admin and /metrics, and the
counters of /metrics as a job runs."""

from __future__ import annotations

import asyncio
import io
import re
import time
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from yarl import URL

from imagine.keys import SERVICE
from imagine.web.keys import WEB
from imagine.web.signing import Link, Signer, load_secret
from tests.backends import on_every_backend as backend  # noqa: F401 (a fixture: each backend)
from tests.service.conftest import submit, wait_done
from tests.web.conftest import ADMIN

BEARER = {"Authorization": f"Bearer {ADMIN}"}


async def link(client: Any, purpose: str = "gallery", **body: Any) -> str:
    response = await client.post("/web/api/links", json={"purpose": purpose, **body})
    data = await response.json()
    assert response.status == 200, data
    return URL(data["url"]).path


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_links_are_signed_bound_and_expire(served: Any) -> None:
    client = await served()
    path = await link(client, user="111")
    assert (await client.get(path)).status == 200
    token = path.rsplit("/", 1)[1]
    payload, signature = token.split(".")
    other = (await link(client, user="222")).rsplit("/", 1)[1].split(".")[0]
    for forged in (f"{other}.{signature}", f"{payload}.{signature[:-2]}xx", payload, "x" * 3000):
        response = await client.get(f"/web/gallery/{forged}")
        text = await response.text()
        assert response.status == 403
        assert "This link does not work" in text
        assert "Run /gallery in Discord again" in text
        assert "Traceback" not in text
    # a gallery link is no editor link
    response = await client.get(f"/web/editor/{token}")
    assert response.status == 403
    assert "It opens a gallery, not this page" in await response.text()
    signer = client.server.app[WEB].signer
    expired = signer.sign(Link("gallery", "111", "local", time.time() - 1))
    response = await client.get(f"/web/gallery/{expired}")
    assert response.status == 403
    assert "This link has expired" in await response.text()
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert response.headers["Referrer-Policy"] == "no-referrer"


async def test_the_secret_is_kept_in_the_data_folder(tmp_path: Any) -> None:
    first = load_secret("", tmp_path)
    assert load_secret("", tmp_path) == first  # links survive a restart
    assert (tmp_path / "web-secret").stat().st_mode & 0o077 == 0
    a, b = Signer(first), Signer(load_secret("configured-secret-value", tmp_path))
    assert a.sign(Link("gallery", "1", "local", 2e9)) != b.sign(Link("gallery", "1", "local", 2e9))


async def test_the_bots_calls_need_its_api_token(served: Any) -> None:
    client = await served(api_tokens=("bot-token",))
    response = await client.post("/web/api/links", json={"purpose": "gallery", "user": "1"})
    assert response.status == 401
    response = await client.post(
        "/web/api/links", json={"purpose": "nonsense", "user": "1"},
        headers={"Authorization": "Bearer bot-token"},
    )  # fmt: skip
    assert response.status == 400
    assert "purpose" in (await response.json())["msg"]
    response = await client.get("/web/api/inbox", headers={"Authorization": "Bearer bot-token"})
    assert (await response.json())["jobs"] == []


async def test_metrics_need_the_operator_token_and_count_jobs(served: Any) -> None:
    client = await served()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": ADMIN}):
        response = await client.get("/metrics", headers=headers)
        assert response.status == 401
    before = samples(await (await client.get("/metrics", headers=BEARER)).text())
    done = await wait_done(client, (await submit(client, "a lighthouse --seed 3"))["messageId"])
    await asyncio.gather(*(client.get("/health") for _ in range(5)))
    after = samples(await (await client.get("/metrics", headers=BEARER)).text())
    assert done["buttons"]
    key = ("imagine_jobs_accepted_total", (("action", "imagine"),))
    assert after[key] == before.get(key, 0) + 1
    assert after[("imagine_jobs_done_total", (("action", "imagine"),))] >= 1
    assert after[("imagine_render_seconds_count", (("engine", "placeholder"),))] >= 1
    assert ("imagine_queue_jobs", (("state", "waiting"),)) in after
    health = (
        "imagine_http_requests_total",
        (("method", "GET"), ("route", "/health"), ("status", "200")),
    )
    assert after[health] >= 5


async def test_admin_needs_the_token(served: Any) -> None:
    client = await served()
    response = await client.get("/admin")
    assert response.status == 401
    assert "Operator dashboard" in await response.text()
    response = await client.post("/admin/login", data={"token": "wrong"})
    assert response.status == 401
    assert "not the operator token" in await response.text()
    response = await client.get("/admin", headers=BEARER)
    assert response.status == 200
    assert "Workers" in await response.text()
    response = await client.post("/admin/cancel/123", headers={})
    assert response.status == 401
    off = await served(admin_token="")
    assert (await off.get("/metrics", headers=BEARER)).status == 401
    response = await off.get("/admin")
    assert "IMAGINE_ADMIN_TOKEN" in await response.text()


async def test_hostile_and_bursty_requests_get_sentences(served: Any) -> None:
    client = await served(rate_per_user=5)
    grid = await wait_done(
        client, (await submit(client, "a kite", ref='{"user": "7"}'))["messageId"]
    )
    upscale = await wait_done(
        client,
        (await (await client.post(
            "/v2/button", json={"buttonMessageId": grid["buttonMessageId"], "button": "U1",
                                "ref": '{"user": "7"}'},
        )).json())["messageId"],
    )  # fmt: skip
    path = await link(
        client, "editor", user="7", channel="1", buttonMessageId=upscale["buttonMessageId"]
    )
    signed = path.rsplit("/", 1)[1]
    csrf = client.server.app[WEB].signer.mac("csrf", signed)
    white = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGP4DwABAQEAG7buVgAAAABJRU5ErkJggg=="
    bodies: list[Any] = [
        {"mask": "not an image", "csrf": csrf},
        {"mask": white, "csrf": csrf, "prompt": 5},
        {"mask": white, "csrf": csrf, "prompt": "x" * 5000},
        [1, 2],
    ]
    for sent in bodies:
        response = await client.post(path, json=sent)
        data = await response.json()
        assert 400 <= response.status < 500, data
        assert data["ok"] is False
        assert data["message"].endswith(".")
    huge = await client.post(
        path,
        data=io.BytesIO(b"{" + b" " * (26 * 1024 * 1024)),
        headers={"Content-Type": "application/json"},
    )
    assert huge.status == 413
    assert "too large" in (await huge.json())["message"]
    # a burst of sends: the member's rate limit answers in words, never with a 500
    answers = await asyncio.gather(
        *(client.post(path, json={"mask": white, "csrf": csrf}) for _ in range(20))
    )
    statuses = sorted(a.status for a in answers)
    assert set(statuses) <= {200, 429}, statuses
    assert 200 in statuses
    assert 429 in statuses
    refused = next(a for a in answers if a.status == 429)
    assert "again" in (await refused.json())["message"].lower()
    # the gallery's filters and pages, with nonsense
    gallery = await link(client, user="7")
    for query in ("?page=-3", "?page=abc", "?q=%25_%5C", "?q=" + "z" * 5000):
        response = await client.get(gallery + query)
        assert response.status == 200
    response = await client.get(gallery + "?from=yesterday")
    assert response.status == 400
    assert "2025-01-31" in await response.text()
    response = await client.get("/web/gallery/")
    assert response.status == 404
    assert "There is no such page" in await response.text()


async def test_the_gallery_lists_filters_and_deletes(served: Any) -> None:
    client = await served()
    ids = {}
    for user, prompt in (("8", "a 100% green_field"), ("8", "a grey field"), ("9", "a field")):
        done = await submit(client, prompt, ref=f'{{"user": "{user}"}}')
        await wait_done(client, done["messageId"])
        ids[prompt] = done["messageId"]
    path = await link(client, user="8")
    page = await (await client.get(path)).text()
    assert "a 100% green_field" in page
    assert "a grey field" in page
    assert ">a field<" not in page
    filtered = await (await client.get(path, params={"q": "100% GREEN_"})).text()
    assert "a 100% green_field" in filtered
    assert "a grey field" not in filtered
    assert "a grey field" not in await (await client.get(path, params={"q": "_"})).text()
    storage = client.server.app[SERVICE].storage
    gone = ids["a grey field"]
    assert await storage.exists(f"images/{gone}/grid.jpg")
    csrf = client.server.app[WEB].signer.mac("csrf", path.rsplit("/", 1)[1])
    response = await client.post(
        f"{path}/delete/{gone}", data={"csrf": csrf}, allow_redirects=False
    )
    assert response.status == 303
    assert not await storage.exists(f"images/{gone}/grid.jpg")
    assert "a grey field" not in await (await client.get(path)).text()
    message = await client.get(f"/v2/message/{gone}")
    assert message.status == 404
    # the dashboard and the metrics read the same database
    board = await (await client.get("/admin", headers=BEARER)).text()
    assert "done, last hour" in board
    assert (await client.get("/metrics", headers=BEARER)).status == 200


async def test_pages_ship_their_own_files_versioned(served: Any) -> None:
    client = await served()
    page = await (await client.get(await link(client, user="1"))).text()
    [css] = re.findall(r'href="(/web/static/style\.css\?v=[^"]+)"', page)
    [script] = re.findall(r'src="(/web/static/gallery\.js\?v=[^"]+)"', page)
    for path in (css, script):
        response = await client.get(path)
        assert response.status == 200
        assert "immutable" in response.headers["Cache-Control"]
    assert "http" not in "".join(re.findall(r'(?:src|href)="([^"]+)"', page))  # nothing remote
