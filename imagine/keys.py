"""The aiohttp application and request keys, in one place."""

from __future__ import annotations

from aiohttp import web

from imagine.engines.base import Engine
from imagine.service import ImagineService
from imagine.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", Engine)
SERVICE = web.AppKey("service", ImagineService)
CLOSE_CONNECTION = web.RequestKey("close_connection", bool)
"""Set on a request whose body could not be read: its connection is not reused."""
TOKEN = web.RequestKey("token", str)
"""The API token the request was let in with; absent without IMAGINE_API_TOKENS."""
