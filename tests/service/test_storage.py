"""Image storage, both kinds, for real: a temp folder, and an S3 API server (moto) on loopback.

The same tests run against both where the behaviour is the interface's; the S3 faults (nothing
listening, a server that never answers, a missing bucket, refused credentials) are real sockets
and real S3 error replies, and each must end in a sentence within seconds, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from PIL import Image

from imagine.errors import DISK_FULL
from imagine.storage import ImageStorage, LocalStorage, S3Storage, StorageError, open_storage
from tests.infra.s3 import S3Bucket

PREFIX = "some/prefix"


def png(color: tuple[int, int, int] = (200, 30, 90), size: int = 64) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), color).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(params=["local", "s3"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ImageStorage]:
    if request.param == "local":
        store = open_storage("", tmp_path / "data", {})
    else:
        bucket: S3Bucket = request.getfixturevalue("s3_bucket")
        url = f"s3://{bucket.name}/{PREFIX}"
        store = open_storage(url, tmp_path / "data", bucket.environ, bucket.endpoint)
    try:
        yield store
    finally:
        await store.close()


def stored_keys(store: ImageStorage, request: pytest.FixtureRequest) -> list[str]:
    """What really lies in the folder or bucket, read around the code under test."""
    if isinstance(store, LocalStorage):
        return sorted(str(p.relative_to(store.root)) for p in store.root.rglob("*") if p.is_file())
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    return [k.removeprefix(f"{PREFIX}/") for k in bucket.object_keys()]


async def test_a_png_round_trips(storage: ImageStorage, request: pytest.FixtureRequest) -> None:
    data = png()
    await storage.put("images/job1/0.png", data, "image/png")
    assert await storage.get("images/job1/0.png") == data
    assert await storage.exists("images/job1/0.png")
    with Image.open(io.BytesIO(await storage.get("images/job1/0.png") or b"")) as image:
        assert image.size == (64, 64)
    assert stored_keys(storage, request) == ["images/job1/0.png"]
    if isinstance(storage, S3Storage):
        bucket: S3Bucket = request.getfixturevalue("s3_bucket")
        head = bucket.server.client().head_object(
            Bucket=bucket.name, Key=f"{PREFIX}/images/job1/0.png"
        )
        assert head["ContentType"] == "image/png"
    await storage.put("images/job1/0.png", png((1, 2, 3)), "image/png")
    assert await storage.get("images/job1/0.png") == png((1, 2, 3))


async def test_a_missing_key_is_none(storage: ImageStorage) -> None:
    assert await storage.get("images/nope/0.png") is None
    assert not await storage.exists("images/nope/0.png")
    await storage.put("images/job1/0.png", png(), "image/png")
    # A folder of objects is not an object.
    assert await storage.get("images/job1") is None
    assert not await storage.exists("images/job1")


async def test_copy(storage: ImageStorage) -> None:
    data = png()
    await storage.put("images/a/0.png", data, "image/png")
    await storage.put("images/b/grid.jpg", b"old", "image/jpeg")
    await storage.copy("images/a/0.png", "images/b/grid.jpg")
    await storage.copy("images/a/0.png", "images/c/new.png")
    assert await storage.get("images/b/grid.jpg") == data
    assert await storage.get("images/c/new.png") == data
    assert await storage.get("images/a/0.png") == data
    with pytest.raises(StorageError, match=r"There is no image images/a/9\.png to copy"):
        await storage.copy("images/a/9.png", "images/c/other.png")


async def test_delete_prefix_removes_that_job_only(
    storage: ImageStorage, request: pytest.FixtureRequest
) -> None:
    for key in ("images/abc/grid.jpg", "images/abc/0.png", "images/abc/sub/1.png"):
        await storage.put(key, png(), "image/png")
    await storage.put("images/abcd/grid.jpg", b"keep", "image/jpeg")
    await storage.put("images/ab/grid.jpg", b"keep", "image/jpeg")
    await storage.put("inputs/abc", b"keep", "image/png")
    assert await storage.delete_prefix("images/abc/") == 3
    assert stored_keys(storage, request) == [
        "images/ab/grid.jpg",
        "images/abcd/grid.jpg",
        "inputs/abc",
    ]
    assert await storage.delete_prefix("images/abc/") == 0
    assert await storage.delete_prefix("images/abcd") == 1
    assert await storage.get("images/ab/grid.jpg") == b"keep"


BAD_KEYS = [
    "",
    "/etc/passwd",
    "images/../../etc/passwd",
    "..",
    "images/./0.png",
    "images//0.png",
    "images/job/",
    "images/a b.png",
    "images/ü.png",
    "images\\job\\0.png",
    "images/.hidden",
    "images/job/0.png\n",
]


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_bad_keys_are_refused(storage: ImageStorage, key: str) -> None:
    with pytest.raises(ValueError, match="storage key"):
        await storage.put(key, b"x", "image/png")
    with pytest.raises(ValueError, match="storage key"):
        await storage.get(key)
    with pytest.raises(ValueError, match="storage key"):
        await storage.exists(key)
    with pytest.raises(ValueError, match="storage key"):
        await storage.copy("images/a/0.png", key)
    with pytest.raises(ValueError, match="storage key"):
        storage.local_path(key)


@pytest.mark.parametrize("prefix", ["", "/", "images/../", "//"])
async def test_bad_prefixes_are_refused(storage: ImageStorage, prefix: str) -> None:
    with pytest.raises(ValueError, match="storage"):
        await storage.delete_prefix(prefix)


async def test_a_burst_of_writers_to_one_key(
    storage: ImageStorage, request: pytest.FixtureRequest
) -> None:
    payloads = [bytes([n]) * 50_000 + png((n, n, n)) for n in range(50)]
    await asyncio.gather(*(storage.put("images/job/0.png", p, "image/png") for p in payloads))
    assert await storage.get("images/job/0.png") in payloads
    # No writer's temporary file is left behind.
    assert stored_keys(storage, request) == ["images/job/0.png"]


async def test_check_leaves_nothing_behind(
    storage: ImageStorage, request: pytest.FixtureRequest
) -> None:
    await storage.check()
    assert stored_keys(storage, request) == []


def test_describe_and_local_path(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    local = open_storage("", tmp_path, {})
    assert local.describe() == f"folder {tmp_path}"
    assert local.local_path("images/j/0.png") == tmp_path / "images" / "j" / "0.png"
    remote = open_storage(f"s3://{s3_bucket.name}/{PREFIX}/", tmp_path, {}, s3_bucket.endpoint)
    assert remote.describe() == f"s3://{s3_bucket.name}/{PREFIX} at {s3_bucket.endpoint}"
    assert remote.local_path("images/j/0.png") is None
    aws = open_storage("s3://my-bucket", tmp_path, {"AWS_REGION": "eu-west-3"})
    assert aws.describe() == "s3://my-bucket at AWS (eu-west-3)"


@pytest.mark.parametrize(
    "url",
    ["file:///data", "s3://", "s3:///prefix", "s3://Bad_Bucket", "https://bucket", "s3://b/../x"],
)
def test_open_storage_refuses_what_it_cannot_use(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValueError, match=r"IMAGINE_STORAGE_URL must be empty \(the data folder\)"):
        open_storage(url, tmp_path, {})


def test_open_storage_refuses_a_bad_endpoint_or_half_credentials(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="IMAGINE_S3_ENDPOINT must be an http"):
        open_storage("s3://bucket", tmp_path, {}, "minio:9000")
    with pytest.raises(ValueError, match="Set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        open_storage("s3://bucket", tmp_path, {"AWS_ACCESS_KEY_ID": "x"}, "http://127.0.0.1:1")


# --- the local folder -------------------------------------------------------------------------


async def test_local_copy_is_a_hard_link(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    await store.put("images/a/0.png", png(), "image/png")
    await store.copy("images/a/0.png", "images/b/0.png")
    assert (tmp_path / "images/a/0.png").stat().st_ino == (
        tmp_path / "images/b/0.png"
    ).stat().st_ino


async def test_local_copy_without_hard_links_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(source: object, target: object) -> None:
        raise PermissionError(1, "Operation not permitted")  # what FAT or some SMB mounts say

    store = LocalStorage(tmp_path)
    await store.put("images/a/0.png", png(), "image/png")
    monkeypatch.setattr(os, "link", no_links)
    await store.copy("images/a/0.png", "images/b/0.png")
    assert await store.get("images/b/0.png") == png()
    assert (tmp_path / "images/a/0.png").stat().st_ino != (
        tmp_path / "images/b/0.png"
    ).stat().st_ino


async def test_local_check_says_why_a_folder_cannot_be_written(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_bytes(b"")
    store = LocalStorage(tmp_path / "a-file" / "data")
    with pytest.raises(StorageError, match=r"cannot be written \(Not a directory\)\. Check") as e:
        await store.check()
    assert not e.value.disk_full
    with pytest.raises(StorageError, match=r"images/a/0\.png could not be saved"):
        await store.put("images/a/0.png", b"x", "image/png")


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` at ``path`` (mounting needs root, as in CI; elsewhere: skipped)."""
    path.mkdir(parents=True)
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]
    if os.geteuid() != 0 or subprocess.run(mount, capture_output=True, check=False).returncode:
        pytest.skip("cannot mount a small tmpfs here (it needs root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


async def test_local_full_disk_is_a_sentence_and_leaves_nothing(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "256k") as disk:
        store = LocalStorage(disk)
        await store.put("images/a/small.png", png(), "image/png")
        with pytest.raises(StorageError) as e:
            await store.put("images/a/big.png", os.urandom(1 << 20), "image/png")
        assert e.value.disk_full
        assert str(e.value).startswith(f"{DISK_FULL}, so images/a/big.png could not be saved.")
        assert sorted(p.name for p in (disk / "images/a").iterdir()) == ["small.png"]


# --- S3 faults --------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_s3_nothing_listening_is_a_sentence_within_seconds(s3_bucket: S3Bucket) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    store = S3Storage(s3_bucket.name, "", endpoint, environ=s3_bucket.environ)
    started = time.monotonic()
    for call in (store.put("images/a/0.png", b"x", "image/png"), store.get("images/a/0.png")):
        with pytest.raises(
            StorageError, match=rf"Could not connect to the S3 storage at {endpoint}"
        ):
            await call
    with pytest.raises(StorageError, match="Check IMAGINE_S3_ENDPOINT"):
        await store.check()
    assert time.monotonic() - started < 10


async def test_s3_a_server_that_never_answers_times_out(s3_bucket: S3Bucket) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel accepts connections; nobody ever reads or replies
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        store = S3Storage(
            s3_bucket.name, "", endpoint, environ=s3_bucket.environ, request_timeout=1, retries=0
        )
        started = time.monotonic()
        with pytest.raises(StorageError, match=r"did not answer within 1 s"):
            await store.put("images/a/0.png", b"x", "image/png")
        assert time.monotonic() - started < 5


async def test_s3_a_missing_bucket_is_named(s3_bucket: S3Bucket) -> None:
    store = S3Storage("no-such-bucket", "", s3_bucket.endpoint, environ=s3_bucket.environ)
    sentence = r'The S3 bucket "no-such-bucket" does not exist at http://127\.0\.0\.1:\d+\. Create'
    with pytest.raises(StorageError, match=sentence):
        await store.check()
    # Not "no such image": a get must not hide a wrong bucket behind None.
    with pytest.raises(StorageError, match=sentence):
        await store.get("images/a/0.png")
    with pytest.raises(StorageError, match=sentence):
        await store.delete_prefix("images/a/")


async def test_s3_refused_credentials_are_named(
    s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    import moto.settings

    # moto checks signatures only when asked to; the server runs in this process.
    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    environ = {"AWS_ACCESS_KEY_ID": "wrong", "AWS_SECRET_ACCESS_KEY": "wrong"}
    store = S3Storage(s3_bucket.name, "", s3_bucket.endpoint, environ=environ)
    with pytest.raises(StorageError, match=r"refused access to the bucket .+InvalidAccessKeyId"):
        await store.check()
    with pytest.raises(StorageError, match="Check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        await store.exists("images/a/0.png")
