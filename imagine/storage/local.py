"""Images as files in a folder on this machine: ``root/<key>``. The single-box default."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from imagine.errors import DISK_FULL, is_disk_full
from imagine.storage.base import ImageStorage, StorageError, check_key, check_prefix

T = TypeVar("T")


def _temporary(path: Path) -> Path:
    """A name beside ``path`` that no other writer uses; it starts with a dot, which no key
    may, so a half-written file is never mistaken for an object."""
    return path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")


class LocalStorage(ImageStorage):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def describe(self) -> str:
        return f"folder {self.root}"

    async def _run(self, action: str, key: str, work: Callable[[], T]) -> T:
        """Run file work in a thread (a slow disk must not stall the event loop) and turn an
        OSError into a StorageError with a sentence."""
        try:
            return await asyncio.to_thread(work)
        except OSError as exc:
            if is_disk_full(exc):
                raise StorageError(
                    f"{DISK_FULL}, so {key} could not be {action}. Ask the server's operator to "
                    f"free some space in {self.root}.",
                    disk_full=True,
                ) from exc
            reason = exc.strerror or type(exc).__name__
            raise StorageError(
                f"The images folder {self.root} failed: {key} could not be {action} ({reason})."
            ) from exc

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        await self._run("saved", key, lambda: _write_atomically(path, data))

    async def get(self, key: str) -> bytes | None:
        path = self._path(key)

        def read() -> bytes | None:
            try:
                return path.read_bytes()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                return None

        return await self._run("read", key, read)

    async def exists(self, key: str) -> bool:
        path = self._path(key)
        return await self._run("looked up", key, path.is_file)

    async def copy(self, source: str, target: str) -> None:
        source_path, target_path = self._path(source), self._path(target)

        def share() -> None:
            if not source_path.is_file():
                raise StorageError(f"There is no image {source} to copy to {target}.")
            target_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = _temporary(target_path)
            try:
                # Objects are immutable, so a hard link shares the file; where the file system
                # has none (some bind mounts, SMB, FAT), a copy. Through a temporary name so
                # that an existing target is replaced in one step.
                try:
                    os.link(source_path, tmp)
                except OSError as exc:
                    if is_disk_full(exc):
                        raise
                    shutil.copyfile(source_path, tmp)
                tmp.replace(target_path)
            finally:
                tmp.unlink(missing_ok=True)

        await self._run("copied", target, share)

    async def delete_prefix(self, prefix: str) -> int:
        folder = self.root / check_prefix(prefix)

        def remove() -> int:
            if not folder.is_dir():
                return 0
            removed = 0
            for parent, dirs, files in os.walk(folder, topdown=False):
                for name in files:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(parent, name))
                        removed += not name.startswith(".")
                for name in dirs:
                    # A writer may be adding a file right now; its folder then stays.
                    with contextlib.suppress(OSError):
                        os.rmdir(os.path.join(parent, name))
            with contextlib.suppress(OSError):
                folder.rmdir()
            return removed

        return await self._run("deleted", prefix, remove)

    async def check(self) -> None:
        probe = self.root / f".check.{secrets.token_hex(8)}"

        def write_probe() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            try:
                probe.write_bytes(b"ok")
            finally:
                probe.unlink(missing_ok=True)

        try:
            await asyncio.to_thread(write_probe)
        except OSError as exc:
            if is_disk_full(exc):
                raise StorageError(
                    f"{DISK_FULL}: nothing can be written to the images folder {self.root}. "
                    "Free some space on it.",
                    disk_full=True,
                ) from exc
            reason = exc.strerror or type(exc).__name__
            raise StorageError(
                f"The images folder {self.root} cannot be written ({reason}). Check that it "
                "exists, is a folder and is writable by this process, or set IMAGINE_DATA_DIR "
                "to one that is."
            ) from exc


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    finally:
        # After a failed write (a full disk) nothing is left behind.
        tmp.unlink(missing_ok=True)
