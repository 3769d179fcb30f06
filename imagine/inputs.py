"""Image prompts: fetched once at submission, checked, and kept under a name made from their bytes.

A restart must not need the link again, so every input is stored before its job is. The same
image sent by many requests at once (links that differ only in a query string) is decoded and
written once; the others wait for that write and then read the whole file.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib

import aiohttp

from imagine import images
from imagine.codes import ResultCode
from imagine.errors import DISK_FULL, ServiceError, unavailable
from imagine.fetch import FetchError, fetch_bytes
from imagine.netguard import UrlPolicy
from imagine.storage import ImageStorage, StorageError


def input_key(name: str) -> str:
    """Where an image prompt lives in the storage (beside, not under, the jobs' images)."""
    return f"inputs/{name}"


class Inputs:
    def __init__(
        self,
        storage: ImageStorage,
        session: aiohttp.ClientSession,
        policy: UrlPolicy,
        max_bytes: int,
    ) -> None:
        self.storage = storage
        self._session = session
        self._policy = policy
        self._max_bytes = max_bytes
        self._decoding = asyncio.Semaphore(2)  # a few at once: each may take hundreds of MB
        self._storing: dict[str, asyncio.Task[None]] = {}

    async def fetch(self, urls: list[str]) -> dict[str, str]:
        """Fetch each distinct URL once and keep it; the stored name of each."""
        names: dict[str, str] = {}
        for url in dict.fromkeys(urls):
            try:
                data = await fetch_bytes(
                    self._session, url, max_bytes=self._max_bytes, policy=self._policy
                )
            except FetchError as exc:
                raise ServiceError(400, ResultCode.INVALID_LINK, str(exc)) from None
            names[url] = await self._keep(data, f"the link {url}", f"from {url}")
        return names

    async def keep(self, data: bytes, what: str) -> str:
        """Keep an image sent as bytes (a data URL, a mask); its stored name. ``what`` names it
        in the error a client reads."""
        if len(data) > self._max_bytes:
            raise ServiceError(
                400, ResultCode.INVALID_LINK,
                f"{what[:1].upper()}{what[1:]} is {len(data) // 1024} KiB; the limit is "
                f"{self._max_bytes // 1024} KiB.",
            )  # fmt: skip
        return await self._keep(data, what, "")

    async def _keep(self, data: bytes, what: str, source: str) -> str:
        """Decode once and store ``data``, or find it stored; its name."""
        where = f" {source}" if source else ""
        name = hashlib.sha256(data).hexdigest()[:32] + ".png"
        task = self._storing.get(name)
        if task is None:
            try:
                if await self.storage.exists(input_key(name)):
                    return name
            except StorageError as exc:
                raise unavailable(f"{exc} The image{where} cannot be kept.") from None
            # its own task: a client that hangs up must not stop a write others wait for
            task = asyncio.create_task(self._write(name, data))
            self._storing[name] = task
            task.add_done_callback(functools.partial(self._written, name))
        try:
            await asyncio.shield(task)
        except ValueError as exc:  # each request is told of its own image, no one else's
            raise ServiceError(
                400, ResultCode.INVALID_LINK, f"{what[:1].upper()}{what[1:]} cannot be used: {exc}."
            ) from None
        except StorageError as exc:
            why = DISK_FULL if exc.disk_full else f"The image storage failed ({exc})"
            raise unavailable(f"{why}, so the image{where} cannot be kept.") from None
        return name

    def _written(self, name: str, task: asyncio.Task[None]) -> None:
        self._storing.pop(name, None)
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every waiter went away

    async def _write(self, name: str, data: bytes) -> None:
        """Decode (ValueError: not a usable image) and store (StorageError) one image."""
        async with self._decoding:
            png = await asyncio.to_thread(lambda: images.png_bytes(images.decode(data)))
        await self.storage.put(input_key(name), png, "image/png")
