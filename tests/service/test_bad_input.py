"""A table of malformed requests: each one a 4xx JSON with a sentence, never a 5xx (with the table in
test_requests.py, well over 40 cases)."""

from __future__ import annotations

import gzip
import json
import sys
import zlib
from typing import Any

import brotli
import pytest
from aiohttp.test_utils import TestClient

from tests.backends import on_both_databases as backend  # noqa: F401 (a fixture: every test on each)
from tests.service.conftest import ClientFactory, submit, wait_done

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

Client = TestClient[Any, Any]
JSON = {"Content-Type": "application/json"}

CASES: list[tuple[str, str, bytes | None, dict[str, str], int, str]] = [
    # imagine: types, sizes, encodings, unicode
    ("POST", "/v2/imagine", None, {}, 400, "no body"),
    ("POST", "/v2/imagine", b"", JSON, 400, "no body"),
    ("POST", "/v2/imagine", b"null", JSON, 400, "JSON object"),
    ("POST", "/v2/imagine", b'"a cat"', JSON, 400, "JSON object"),
    ("POST", "/v2/imagine", b'{"msg": null}', JSON, 400, "'msg' is missing"),
    ("POST", "/v2/imagine", b'{"msg": ["a"]}', JSON, 400, "must be a string"),
    ("POST", "/v2/imagine", b'{"msg": {"text": "a"}}', JSON, 400, "must be a string"),
    ("POST", "/v2/imagine", b'{"msg": true}', JSON, 400, "must be a string"),
    ("POST", "/v2/imagine", b'{"msg": "a", "ref": 5}', JSON, 400, "'ref' must be a string"),
    ("POST", "/v2/imagine", b'{"msg": "a", "webhookOverride": 5}', JSON, 400, "must be a string"),
    (
        "POST",
        "/v2/imagine",
        b'{"msg": "a", "webhookOverride": "not a url"}',
        JSON,
        400,
        "webhookOverride",
    ),
    (
        "POST",
        "/v2/imagine",
        b'{"msg": "a", "webhookOverride": "http://169.254.169.254/"}',
        JSON,
        400,
        "private",
    ),
    ("POST", "/v2/imagine", b'{"msg": "a", "ignorePrefilter": 2}', JSON, 400, "true or false"),
    ("POST", "/v2/imagine", b'{"msg": "\\ud800"}', JSON, 400, "UTF-8"),
    ("POST", "/v2/imagine", '{"msg": "🐱🐱 --ar 0:1"}'.encode(), JSON, 400, "--ar"),
    ("POST", "/v2/imagine", b'{"msg": "a cat --seed -1"}', JSON, 400, "--seed"),
    ("POST", "/v2/imagine", b'{"msg": "a cat --seed 99999999999"}', JSON, 400, "--seed"),
    ("POST", "/v2/imagine", b'{"msg": "a cat --ar 5:1"}', JSON, 400, "--ar"),
    ("POST", "/v2/imagine", b'{"msg": "a cat --q 3"}', JSON, 400, "--q"),
    ("POST", "/v2/imagine", b'{"msg": "a cat --v 99"}', JSON, 400, "--v"),
    ("POST", "/v2/imagine", b'{"msg": "{a,b,c,d,e,f,g} {1,2,3,4,5,6,7}"}', JSON, 400, "40"),
    ("POST", "/v2/imagine", b'{"msg": "a:: b::-2"}', JSON, 400, "::"),
    # weights that overflow a float (they were a 500 OverflowError)
    ("POST", "/v2/imagine", b'{"msg": "a::1' + b"0" * 308 + b'"}', JSON, 400, "too large"),
    (
        "POST",
        "/v2/imagine",
        b'{"msg": "a::1' + b"0" * 308 + b" b::1" + b"0" * 308 + b'"}',
        JSON,
        400,
        "weight",
    ),
    ("POST", "/v2/imagine", b'{"msg": "a::inf b"}', JSON, 400, "not a plain number"),
    ("POST", "/v2/imagine", b'{"msg": "--ar 1:1"}', JSON, 400, "empty"),
    ("POST", "/v2/imagine", b'{"msg": "https:// a cat"}', JSON, 400, "no host name"),
    ("POST", "/v2/imagine", b'{"msg": "http://10.0.0.1/a.png a cat"}', JSON, 400, "private"),
    ("POST", "/v2/imagine", b'{"msg": "http://[::1]/a.png a cat"}', JSON, 400, "private"),
    ("POST", "/v2/imagine", b'{"msg": "http://2130706433/a.png a cat"}', JSON, 400, "private"),
    ("POST", "/v2/imagine", b'{"msg": "a cat", "ref": "' + b"r" * 2001 + b'"}', JSON, 400, "ref"),
    # bodies whose Content-Encoding header lies, or names what no one can decode
    *[
        (
            "POST",
            "/v2/imagine",
            b'{"msg": "a cat"}',
            {**JSON, "Content-Encoding": name},
            400,
            f"not valid {name} data",
        )
        for name in ("gzip", "deflate", "br", "zstd")
    ],
    (
        "POST",
        "/v2/imagine",
        b"\x1f\x8b\x08\x00garbage",
        {**JSON, "Content-Encoding": "gzip"},
        400,
        "not valid gzip",
    ),
    (
        "POST",
        "/v2/imagine",
        b'{"msg": "a"}',
        {**JSON, "Content-Encoding": "compress"},
        415,
        "not supported",
    ),
    # webhooks that could never be delivered
    (
        "POST",
        "/v2/imagine",
        b'{"msg": "a", "webhookOverride": "http://8.8.8.8./h"}',
        JSON,
        400,
        "cannot end with a dot",
    ),
    (
        "POST",
        "/v2/imagine",
        b'{"msg": "a", "webhookOverride": "http://' + b"x" * 64 + b'.example/h"}',
        JSON,
        400,
        "label of 64",
    ),
    (
        "POST",
        "/v2/imagine",
        b'{"msg": "a", "webhookOverride": "http://a b.example/h"}',
        JSON,
        400,
        "space",
    ),
    *[
        (
            "POST",
            "/v2/imagine",
            b'{"msg": "a", "webhookOverride": "' + url + b'"}',
            JSON,
            400,
            words,
        )
        for url, words in [
            (b"http://example.com:0/h", "port 0"),
            (b"http://256.256.256.256/h", "not a valid IP address"),
            (b"http://99999999999/h", "not a valid IP address"),
            (b"http://1.2.3.4.5/h", "not a valid IP address"),
            (b"http://-bad-.example/h", "starts or ends with -"),
        ]
    ],
    # button
    ("POST", "/v2/button", b"{}", JSON, 400, "'buttonMessageId' is missing"),
    ("POST", "/v2/button", b'{"buttonMessageId": "x"}', JSON, 400, "'button' is missing"),
    (
        "POST",
        "/v2/button",
        b'{"buttonMessageId": 1, "button": "U1"}',
        JSON,
        400,
        "must be a string",
    ),
    (
        "POST",
        "/v2/button",
        b'{"buttonMessageId": "nope", "button": "U1"}',
        JSON,
        404,
        "buttonMessageId",
    ),
    (
        "POST",
        "/v2/button",
        b'{"buttonMessageId": "' + b"x" * 101 + b'", "button": "U1"}',
        JSON,
        400,
        "limit",
    ),
    ("POST", "/v2/button", b"[]", JSON, 400, "JSON object"),
    # message, info, routes, methods
    ("GET", "/v2/message/unknown", None, {}, 404, "No message"),
    ("GET", "/v2/message/x?expireMins=-1", None, {}, 400, "expireMins"),
    ("GET", "/v2/message/x?expireMins=nan", None, {}, 400, "expireMins"),
    ("GET", "/v2/message/" + "%F0%9F%90%B1" * 3, None, {}, 404, "No message"),
    ("GET", "/v2/nothing", None, {}, 404, "no endpoint"),
    ("GET", "/v2/imagine", None, {}, 405, "use POST"),
    ("DELETE", "/v2/message/x", None, {}, 405, "use GET"),
    ("GET", "/images/../../etc/passwd", None, {}, 404, ""),
    ("GET", "/images/abc/../../jobs.sqlite3", None, {}, 404, ""),
    ("GET", "/images/abc/grid.jpg", None, {}, 404, "No such image"),
]


@pytest.mark.parametrize(("method", "path", "body", "headers", "status", "words"), CASES)
async def test_malformed_request_gets_a_4xx_sentence(
    make_client: ClientFactory,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    status: int,
    words: str,
) -> None:
    # private addresses refused as in production: nothing here may connect beyond loopback
    client = await make_client(allow_private_urls=False)
    response = await client.request(method, path, data=body, headers=headers)
    assert response.status == status
    assert response.content_type == "application/json"
    data = await response.json()
    assert data["success"] is False
    assert len(data["msg"]) > 8
    assert words.lower() in data["msg"].lower()
    assert "Traceback" not in data["msg"]


async def test_button_on_a_failed_job_is_refused(client: Client) -> None:
    accepted = await submit(client, "a cat")
    done = await wait_done(client, accepted["messageId"])
    response = await client.post(
        "/v2/button",
        data=json.dumps({"buttonMessageId": done["buttonMessageId"], "button": "Upscale (2x)"}),
    )
    assert response.status == 400
    assert (await response.json())["code"] == "BUTTON_NOT_FOUND"


@pytest.mark.parametrize("name", ["gzip", "deflate", "br", "zstd"])
async def test_a_compressed_body_is_read(client: Client, name: str) -> None:
    raw = json.dumps({"msg": "a compressed cat"}).encode()
    if name == "gzip":
        body = gzip.compress(raw)
    elif name == "deflate":
        body = zlib.compress(raw)
    elif name == "br":
        body = brotli.compress(raw)
    else:
        body = zstd.compress(raw)
    response = await client.post(
        "/v2/imagine", data=body, headers={**JSON, "Content-Encoding": name}
    )
    assert response.status == 200, await response.text()
    done = await wait_done(client, (await response.json())["messageId"])
    assert done["content"] == "a compressed cat"


async def test_a_lying_encoding_logs_no_traceback(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    response = await client.post(
        "/v2/imagine", data=b'{"msg": "a"}', headers={**JSON, "Content-Encoding": "gzip"}
    )
    assert response.status == 400
    assert not [r for r in caplog.records if r.exc_info or r.levelname == "ERROR"]
