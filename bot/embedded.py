"""The Imagine service run inside the bot's process when no remote IMAGINE_API_URL is set.

This is the only module of the bot that imports ``imagine``, and only to start and stop it: the
bot then talks to it over HTTP on loopback like to any remote service.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The bot cannot start; the message is one sentence telling the operator what to fix."""


@dataclass(frozen=True)
class ServiceEndpoint:
    url: str
    token: str
    stop: Callable[[], Awaitable[None]]


async def start_embedded(environ: Mapping[str, str]) -> ServiceEndpoint:
    from imagine.engines.base import EngineUnavailable
    from imagine.server import ConfigError
    from imagine.server import start_embedded as start_service
    from imagine.settings import Settings, SettingsError
    from imagine.store import StoreError

    try:
        settings = Settings.from_env(environ)
        service = await start_service(settings)
    except (SettingsError, EngineUnavailable, ConfigError, StoreError) as exc:
        raise StartupError(str(exc)) from exc
    except ValueError as exc:  # e.g. an unreadable IMAGINE_BANNED_WORDS_FILE
        raise StartupError(str(exc)) from exc
    token = settings.api_tokens[0] if settings.api_tokens else ""
    log.info("embedded image service on %s (engine %s)", service.url, settings.engine)
    return ServiceEndpoint(url=service.url, token=token, stop=service.stop)
