"""The service through its real aiohttp app, a real SQLite file and the placeholder engine."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from PIL import Image
from yarl import URL

from imagine.app import create_app
from imagine.engines.placeholder import PlaceholderEngine
from imagine.settings import Settings

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def make_client(settings: Settings, aiohttp_client: Any) -> ClientFactory:
    # settings first: its database (and bucket) must outlive the clients' apps at teardown
    async def make(engine: Any = None, **changes: Any) -> TestClient[Any, Any]:
        app = create_app(settings.with_(**changes), engine=engine or PlaceholderEngine())
        client: TestClient[Any, Any] = await aiohttp_client(app)
        return client

    return make


@pytest.fixture
async def client(make_client: ClientFactory) -> TestClient[Any, Any]:
    return await make_client()


async def submit(client: TestClient[Any, Any], msg: str, **body: Any) -> dict[str, Any]:
    response = await client.post("/v2/imagine", json={"msg": msg, **body})
    data: dict[str, Any] = await response.json()
    assert response.status == 200, data
    return data


async def wait_done(
    client: TestClient[Any, Any], message_id: str, timeout: float = 20.0
) -> dict[str, Any]:
    """Poll GET /v2/message like any client until progress is 100; returns the completed message."""
    async with asyncio.timeout(timeout):
        while True:
            response = await client.get(f"/v2/message/{message_id}")
            assert response.status == 200
            data: dict[str, Any] = await response.json()
            if data["progress"] == 100:
                response_body: dict[str, Any] = data["response"]
                return response_body
            await asyncio.sleep(0.02)


async def press(
    client: TestClient[Any, Any], button_message_id: str, button: str
) -> dict[str, Any]:
    response = await client.post(
        "/v2/button", json={"buttonMessageId": button_message_id, "button": button}
    )
    data: dict[str, Any] = await response.json()
    assert response.status == 200, data
    return data


async def fetch_image(client: TestClient[Any, Any], url: str) -> Image.Image:
    response = await client.get(URL(url).path)
    assert response.status == 200
    return Image.open(io.BytesIO(await response.read()))
