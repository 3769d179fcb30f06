"""Running the service: as its own server, or embedded in the bot's process on loopback."""

from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass

from aiohttp import web

from imagine.app import create_app
from imagine.engines.base import Engine
from imagine.keys import SERVICE
from imagine.settings import Settings

log = logging.getLogger(__name__)


class ConfigError(RuntimeError):
    """The service must not start as configured; the message says what to change."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(settings: Settings) -> None:
    if not settings.auth_required and not is_loopback(settings.host):
        raise ConfigError(
            f"Refusing to listen on {settings.host} without authentication: set IMAGINE_API_TOKENS "
            "(comma-separated bearer tokens), or listen on 127.0.0.1."
        )


@dataclass
class RunningService:
    runner: web.AppRunner
    url: str

    async def drain(self, grace: float) -> None:
        """Refuse new jobs and let running ones finish for up to ``grace`` seconds."""
        await self.runner.app[SERVICE].drain(grace)

    async def stop(self) -> None:
        await self.runner.cleanup()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.") from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def start_service(settings: Settings, engine: Engine | None = None) -> RunningService:
    """Start the API on ``settings.host``/``settings.port`` (port 0 = any free port)."""
    check_binding(settings)
    sock = _listen(settings.host, settings.port)
    settings = settings.with_(port=sock.getsockname()[1])  # image URLs need the real port
    runner = web.AppRunner(create_app(settings, engine), access_log=None, handle_signals=False)
    try:
        await runner.setup()
        await web.SockSite(runner, sock).start()
    except BaseException:
        await runner.cleanup()
        sock.close()
        raise
    log.info("Imagine API listening on %s", settings.base_url)
    return RunningService(runner, f"http://{settings.host}:{settings.port}")


async def start_embedded(settings: Settings) -> RunningService:
    """The service inside the bot's process: loopback, and a free port unless IMAGINE_PORT is set."""
    host = settings.host if is_loopback(settings.host) else "127.0.0.1"
    port = settings.port if settings.environ.get("IMAGINE_PORT") else 0
    return await start_service(settings.with_(host=host, port=port))
