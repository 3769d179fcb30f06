"""Where images live: one interface, a folder on this machine or an S3 bucket shared by many.

Keys are relative, slash-separated names such as ``images/<job_id>/grid.jpg`` or
``inputs/<name>``; every implementation checks them the same way, so a key that one accepts the
other accepts too, and no key can reach outside its folder or bucket prefix.
"""

from __future__ import annotations

import abc
import pathlib
import re

_PART = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


class StorageError(Exception):
    """An image could not be stored or read; ``str(exc)`` is a sentence for the operator or user.

    ``disk_full`` says the cause is a full disk (or a full bucket), which callers report as
    "try again later" rather than as a broken job.
    """

    def __init__(self, message: str, *, disk_full: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.disk_full = disk_full


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe object name; else raise ValueError with a sentence.

    A part may hold only letters, digits, ``.``, ``_`` and ``-`` and may not start with a dot:
    that rules out ``.`` and ``..``, hidden files, and the temporary names writers use.
    """
    if not isinstance(key, str) or not key:
        raise ValueError("A storage key must be a non-empty string.")
    if key.startswith("/"):
        raise ValueError(f"A storage key must be relative, got {key!r}.")
    for part in key.split("/"):
        if not part:
            raise ValueError(f"A storage key may not have empty parts, got {key!r}.")
        if not _PART.fullmatch(part):
            raise ValueError(
                f"A storage key's parts may hold only letters, digits, '.', '_' and '-' and may "
                f"not start with a dot, got {key!r}."
            )
    return key


def check_prefix(prefix: str) -> str:
    """A prefix names a folder of keys: ``images/<job_id>/`` (the trailing slash is optional).

    Returns it without the trailing slash. The empty prefix (everything) is refused, so a
    wrong job id can never wipe the whole store.
    """
    folder = prefix[:-1] if prefix.endswith("/") else prefix
    if not folder:
        raise ValueError("A storage prefix must name a folder such as 'images/<job_id>/'.")
    return check_key(folder)


class ImageStorage(abc.ABC):
    """Images and input files by key. Objects are immutable once written, so readers never
    need locks: ``put`` is atomic and a reader sees all of an object or none of it."""

    @abc.abstractmethod
    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` under ``key``, replacing what was there, all or nothing."""

    @abc.abstractmethod
    async def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such object."""

    @abc.abstractmethod
    async def exists(self, key: str) -> bool:
        """Whether there is an object under ``key``."""

    @abc.abstractmethod
    async def copy(self, source: str, target: str) -> None:
        """Make ``target`` hold the same bytes as ``source`` without sending them through us."""

    @abc.abstractmethod
    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under the folder ``prefix`` (``images/<job_id>/``); how many."""

    @abc.abstractmethod
    def local_path(self, key: str) -> pathlib.Path | None:
        """The file that holds ``key`` when storage is local (so it can be sent with sendfile),
        whether or not it exists yet; None when objects do not live in local files."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Where objects live, for logs: ``folder /data`` or ``s3://bucket/prefix at ...``."""

    @abc.abstractmethod
    async def check(self) -> None:
        """At start: prove that objects can be written, or raise StorageError saying why."""

    async def close(self) -> None:  # noqa: B027 (a hook: most stores hold nothing to release)
        """Release what the store holds (connections); it is not used afterwards."""
