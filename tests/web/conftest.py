"""The web pages through the real app on a real port, in Debian's Chromium (headless) driven by
Playwright. Never a downloaded browser: the tests launch /usr/bin/chromium (``make system-deps``
installs it) and are skipped with a sentence where it is missing."""

from __future__ import annotations

import contextlib
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from imagine.app import create_app
from imagine.engines.placeholder import PlaceholderEngine
from imagine.settings import Settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WIDTHS = {"wide": 1280, "phone": 390}
ADMIN = "operator-token-for-tests"
Client = TestClient[Any, Any]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[Callable[..., Awaitable[Client]]]:
    """Start the app on a known loopback port, with IMAGINE_PUBLIC_URL pointing at it."""
    clients: list[Client] = []

    async def start(**changes: Any) -> Client:
        port = free_port()
        chosen = settings.with_(
            **{"public_url": f"http://127.0.0.1:{port}", "admin_token": ADMIN, **changes}
        )
        app = create_app(chosen, engine=PlaceholderEngine(seconds=chosen.placeholder_seconds))
        client: Client = TestClient(TestServer(app, host="127.0.0.1", port=port))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """Debian's Chromium, headless, through Playwright (skips the test where it is missing)."""
    if not shutil.which(CHROMIUM):
        pytest.skip("Chromium is not installed: run `make system-deps` (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium() as launched:
        yield launched


async def open_page(browser: Any, url: str, width: int = 1280) -> tuple[Any, list[str]]:
    """A new page at ``url``; the list fills with every URL the page requests."""
    context = await browser.new_context(viewport={"width": width, "height": 900})
    page = await context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    await page.goto(url)
    return page, requested


async def screenshots(
    browser: Any, url: str, name: str, prepare: Callable[[Any], Awaitable[None]] | None = None
) -> None:
    """The page at 1280 px and 390 px wide, under docs/screenshots/ (the README shows them);
    ``prepare`` does something on the page first (paint a stroke)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, width in WIDTHS.items():
        page, _ = await open_page(browser, url, width)
        await page.wait_for_load_state("networkidle")
        if prepare is not None:
            await prepare(page)
        await page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
        await page.context.close()
