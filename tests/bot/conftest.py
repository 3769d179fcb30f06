"""Fixtures for the bot's unit tests: the v2 stub on 127.0.0.1 and an ImagineClient talking to it."""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    # discord.py 2.7 imports audioop (deprecated in 3.11); pytest turns warnings into errors.
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord  # noqa: F401
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.client import ImagineClient
from tests.bot.stub_service import StubService


@pytest.fixture
async def stub(aiohttp_server: Any) -> StubService:
    service = StubService()
    server = await aiohttp_server(service.app())
    service.base_url = str(server.make_url("")).rstrip("/")
    return service


@pytest.fixture
async def imagine(stub: StubService) -> AsyncIterator[ImagineClient]:
    client = ImagineClient(stub.base_url, "secret-token", timeout=5)
    yield client
    await client.close()
