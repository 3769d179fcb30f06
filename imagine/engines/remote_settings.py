"""Reading a remote engine's settings: server URLs, basic auth, pixel sizes.

Every unusable value is an :class:`EngineUnavailable` naming the variable, printed at start-up.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from yarl import URL

from imagine.engines.base import EngineUnavailable


def parse_url(raw: str, variable: str) -> str:
    """A base URL from the environment, without a trailing slash, or EngineUnavailable."""
    url = URL(raw.strip())
    if url.scheme not in ("http", "https") or not url.host:
        raise EngineUnavailable(f"{variable} must be an http:// or https:// address, got {raw!r}.")
    return str(url).rstrip("/")


def basic_auth(user: str, password: str) -> dict[str, str]:
    """The Authorization header for HTTP basic auth (aiohttp's BasicAuth is deprecated)."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def env_int(environ: Mapping[str, str], variable: str, default: int) -> int:
    raw = environ.get(variable, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 64 <= int(raw) <= 4096:
        raise EngineUnavailable(
            f"{variable} must be a whole number of pixels (64–4096), got {raw!r}."
        )
    return int(raw)
