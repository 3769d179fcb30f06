"""A full disk, for real: the data folder (or only its images folder) on a small tmpfs that a
filler file fills up. Every job still ends, with a sentence that says the disk is full; nothing
is left half-written; and the service recovers by itself once space returns.

Mounting a tmpfs needs root (CI runs as root); elsewhere these tests are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from PIL import Image

from imagine.engines.base import GenerateRequest, ProgressCallback
from imagine.engines.placeholder import PlaceholderEngine
from tests.service.conftest import ClientFactory, submit, wait_done


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> Path:
    """Write a file until the disk under ``folder`` has no space left."""
    filler = folder / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


class GatedEngine(PlaceholderEngine):
    """Renders (without previews) only once ``gate`` is set, so the test can fill the disk while
    the job is running."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.started = asyncio.Event()

    async def generate(
        self, request: GenerateRequest, progress: ProgressCallback
    ) -> list[Image.Image]:
        self.started.set()
        await self.gate.wait()
        return await super().generate(request, lambda fraction, preview=None: None)


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


async def test_images_folder_full_says_the_disk_is_full_and_recovers(
    make_client: ClientFactory, settings: Any, tmp_path: Path
) -> None:
    with small_disk(settings.data_dir / "images", "512k") as images:
        client = await make_client()
        filler = fill(images)
        failed = await wait_done(client, (await submit(client, "a tall ship"))["messageId"])
        assert failed["status"] == "failed"
        assert failed["content"] == "INTERNAL_ERROR"
        assert "disk is full" in failed["error"]
        assert "engine" not in failed["error"]
        # the failed job's folder goes right after the failure is saved (pollers may see the
        # failure a moment before that)
        async with asyncio.timeout(5):
            while [p.name for p in images.iterdir()] != [filler.name]:
                await asyncio.sleep(0.05)
        assert leftovers(images) == []
        filler.unlink()
        done = await wait_done(client, (await submit(client, "a tall ship"))["messageId"])
        assert done["status"] == "done"


async def test_data_folder_full_ends_the_job_and_the_service_recovers(
    make_client: ClientFactory, settings: Any, tmp_path: Path
) -> None:
    with small_disk(settings.data_dir, "2m") as data:
        engine = GatedEngine()
        client = await make_client(engine=engine)
        accepted = await submit(client, "a lighthouse")
        await engine.started.wait()
        filler = fill(data)
        engine.gate.set()
        failed = await wait_done(client, accepted["messageId"])
        assert failed["status"] == "failed"
        assert "disk is full" in failed["error"]
        info = await (await client.get("/v2/info")).json()
        assert (info["queued"], info["running"]) == (0, 0)
        # the database cannot take the failure yet: it stays running there, answered from memory
        with sqlite3.connect(f"file:{data / 'jobs.sqlite3'}?mode=ro", uri=True) as db:
            [(status,)] = db.execute(
                "SELECT status FROM jobs WHERE id = ?", (accepted["messageId"],)
            ).fetchall()
        assert status == "running"
        # a new job cannot be stored: a 503 with a sentence and Retry-After, never a 500
        refused = await client.post("/v2/imagine", json={"msg": "another"})
        body = await refused.json()
        assert refused.status == 503, body
        assert "disk is full" in body["msg"]
        assert refused.headers["Retry-After"]
        assert leftovers(data) == []

        filler.unlink()  # space returns: the failure is saved and new work is taken again
        async with asyncio.timeout(15):
            while True:
                with sqlite3.connect(f"file:{data / 'jobs.sqlite3'}?mode=ro", uri=True) as db:
                    [(status,)] = db.execute(
                        "SELECT status FROM jobs WHERE id = ?", (accepted["messageId"],)
                    ).fetchall()
                if status == "failed":
                    break
                await asyncio.sleep(0.2)
        again = await (await client.get(f"/v2/message/{accepted['messageId']}")).json()
        assert "disk is full" in again["response"]["error"]
        engine.gate.set()
        done = await wait_done(client, (await submit(client, "a lighthouse"))["messageId"])
        assert done["status"] == "done"
        assert leftovers(data) == []


def test_fill_really_fills(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "64k") as disk:
        fill(disk)
        with pytest.raises(OSError, match="No space") as raised:
            (disk / "more").write_bytes(b"x" * 8192)
        assert raised.value.errno == errno.ENOSPC


async def test_a_webhook_whose_delivery_cannot_be_recorded_is_not_sent_again_and_again(
    make_client: ClientFactory, settings: Any, aiohttp_server: Any
) -> None:
    """The receiver takes the webhook, and the disk fills before "delivered" can be written:
    the delivery is kept in memory and not sent again while the disk stays full."""
    with small_disk(settings.data_dir, "2m") as data:
        hits: list[float] = []
        fillers: list[Path] = []

        async def hook(request: web.Request) -> web.Response:
            await request.read()
            hits.append(asyncio.get_running_loop().time())
            if not fillers:
                fillers.append(fill(data))
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/hook", hook)
        receiver = await aiohttp_server(app, host="127.0.0.1")
        client = await make_client()
        await submit(client, "a kite", webhookOverride=str(receiver.make_url("/hook")))
        await asyncio.sleep(3)
        assert len(hits) == 1  # it was sent again and again in a tight loop
        fillers[0].unlink()
        await asyncio.sleep(6)  # space is back: the outcome is saved, nothing is sent again
        assert len(hits) == 1
        with sqlite3.connect(f"file:{data / 'jobs.sqlite3'}?mode=ro", uri=True) as db:
            assert db.execute("SELECT state FROM webhooks").fetchall() == [("delivered",)]
