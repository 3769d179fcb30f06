"""Fetching image prompts from user-given URLs: guarded, size- and time-limited, redirects checked."""

from __future__ import annotations

import asyncio

import aiohttp
from yarl import URL

from imagine.netguard import BlockedAddress, UrlPolicy, guarded_connector_kwargs

MAX_REDIRECTS = 5


class FetchError(ValueError):
    """An image URL cannot be used; the message is a sentence for the user."""


def guarded_session(
    allow_private: bool, timeout: float, connect: float = 10.0, limit: int = 100
) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, **guarded_connector_kwargs(allow_private)),
        timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, connect)),
        headers={"User-Agent": "imagine-bot (+image prompt fetch)"},
    )


async def fetch_bytes(
    session: aiohttp.ClientSession, url: str, *, max_bytes: int, policy: UrlPolicy
) -> bytes:
    """The body at ``url``; every hop of a redirect chain passes the guard."""
    try:
        current = policy.check(url)
    except (BlockedAddress, ValueError) as exc:
        raise FetchError(f"The link {url} cannot be used: {exc}.") from None
    try:
        for _ in range(MAX_REDIRECTS + 1):
            async with session.get(current, allow_redirects=False) as response:
                if response.status in (301, 302, 303, 307, 308):
                    location = response.headers.get("Location")
                    if not location:
                        raise FetchError(f"The link {url} redirects nowhere.")
                    current = policy.check(str(current.join(URL(location))))
                    continue
                if response.status != 200:
                    raise FetchError(
                        f"The link {url} answered HTTP {response.status}; is it public?"
                    )
                length = response.content_length
                if length is not None and length > max_bytes:
                    raise FetchError(f"The image at {url} is over {max_bytes // (1024 * 1024)} MB.")
                body = bytearray()
                async for chunk in response.content.iter_chunked(65536):
                    body += chunk
                    if len(body) > max_bytes:
                        raise FetchError(
                            f"The image at {url} is over {max_bytes // (1024 * 1024)} MB."
                        )
                return bytes(body)
        raise FetchError(f"The link {url} redirects too many times.")
    except BlockedAddress as exc:
        raise FetchError(f"The link {url} cannot be used: {exc}.") from None
    except TimeoutError:
        raise FetchError(f"The link {url} took too long to answer.") from None
    except (aiohttp.ClientError, asyncio.IncompleteReadError, UnicodeError) as exc:
        reason = str(exc) or type(exc).__name__
        raise FetchError(f"The link {url} could not be reached ({reason}).") from None
