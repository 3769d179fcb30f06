"""Images in an S3 bucket (AWS, MinIO, Cloudflare R2, Garage, ...), shared by every process.

Built on obstore: one small Rust wheel with a native asyncio API. Every failure becomes a
StorageError whose sentence names the bucket and the endpoint and says what to check; a server
that stops answering fails a call after the client timeouts instead of hanging it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import obstore
from obstore.exceptions import BaseError, PermissionDeniedError, UnauthenticatedError
from obstore.store import S3Store

from imagine.storage.base import ImageStorage, StorageError, check_key, check_prefix

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig, S3Config

_CODE = re.compile(r"<Code>([^<]+)</Code>")
_DENIED = {
    "AccessDenied",
    "AllAccessDisabled",
    "ExpiredToken",
    "InvalidAccessKeyId",
    "InvalidToken",
    "SignatureDoesNotMatch",
}
_FULL = {"XMinioStorageFull", "QuotaExceeded", "InsufficientStorage"}


class S3Storage(ImageStorage):
    """Objects at ``s3://bucket/prefix/<key>``.

    ``endpoint`` empty means AWS itself; any other (``http://minio:9000``) is an S3-compatible
    server, addressed path-style (``endpoint/bucket/key``), which MinIO, moto and R2 all accept.
    Credentials come from ``environ`` (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, and
    AWS_SESSION_TOKEN if set); without them obstore uses the machine's role (instance metadata).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint: str = "",
        region: str = "",
        *,
        environ: Mapping[str, str] | None = None,
        connect_timeout: float = 5.0,
        request_timeout: float = 30.0,
        retries: int = 2,
    ) -> None:
        env = environ or {}
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if self.prefix:
            check_key(self.prefix)
        self.endpoint = endpoint.rstrip("/")
        self.region = (
            region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        ).strip()
        self.request_timeout = request_timeout
        config: S3Config = {"region": self.region}
        if self.endpoint:
            # AWS_ENDPOINT_URL_S3 in the process environment would win over `endpoint`.
            config["endpoint"] = config["aws_endpoint_url_s3"] = self.endpoint
            config["virtual_hosted_style_request"] = False
        else:
            # AWS prefers bucket.s3.region.amazonaws.com; a dotted name breaks its TLS name.
            config["virtual_hosted_style_request"] = "." not in bucket
        key_id = env.get("AWS_ACCESS_KEY_ID", "").strip()
        secret = env.get("AWS_SECRET_ACCESS_KEY", "").strip()
        if bool(key_id) != bool(secret):
            raise ValueError(
                "Set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for S3 storage, or neither "
                "to use the machine's role."
            )
        if key_id:
            config["access_key_id"], config["secret_access_key"] = key_id, secret
            if token := env.get("AWS_SESSION_TOKEN", "").strip():
                config["session_token"] = token
        client: ClientConfig = {
            "allow_http": self.endpoint.startswith("http://"),
            "connect_timeout": timedelta(seconds=connect_timeout),
            "timeout": timedelta(seconds=request_timeout),
        }
        # obstore's default retries for three minutes, which would look like a hang.
        retry: RetryConfig = {
            "max_retries": retries,
            "retry_timeout": timedelta(seconds=request_timeout),
        }
        self._store = S3Store(
            bucket,
            prefix=self.prefix or None,
            config=config,
            client_options=client,
            retry_config=retry,
        )

    def _where(self) -> str:
        return self.endpoint or f"AWS ({self.region})"

    def describe(self) -> str:
        path = f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket
        return f"s3://{path} at {self._where()}"

    def local_path(self, key: str) -> Path | None:
        check_key(key)
        return None

    def _failure(self, exc: Exception, action: str, key: str) -> StorageError:
        """The sentence for a failed call: what happened, to which bucket where, what to check."""
        text = str(exc)
        found = _CODE.search(text)
        code = found.group(1) if found else ""
        bucket, where = f'"{self.bucket}"', self._where()
        if code == "NoSuchBucket":
            message = (
                f"The S3 bucket {bucket} does not exist at {where}. Create it, or correct "
                "IMAGINE_STORAGE_URL (and IMAGINE_S3_ENDPOINT)."
            )
        elif (
            isinstance(exc, PermissionDeniedError | UnauthenticatedError)
            or code in _DENIED
            or "403 Forbidden" in text
        ):
            message = (
                f"The S3 storage at {where} refused access to the bucket {bucket} "
                f"({code or 'access denied'}). Check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(and AWS_SESSION_TOKEN), and that they may read and write that bucket."
            )
        elif code in _FULL or "507 Insufficient Storage" in text:
            return StorageError(
                f"The S3 storage at {where} is full, so {key} could not be {action}. Ask the "
                f"server's operator to free some space in the bucket {bucket}.",
                disk_full=True,
            )
        elif "kind: Timeout" in text:
            message = (
                f"The S3 storage at {where} did not answer within {self.request_timeout:g} s, so "
                f"{key} could not be {action}. Check that it is up and not overloaded."
            )
        elif "kind: Connect" in text or "error sending request" in text:
            message = (
                f"Could not connect to the S3 storage at {where} (bucket {bucket}), so {key} could "
                f"not be {action}. Check IMAGINE_S3_ENDPOINT and that the server is up and reachable."
            )
        else:
            reason = code or text.split("\n", 1)[0][:200]
            message = (
                f"The S3 storage at {where} failed: {key} could not be {action} in the bucket "
                f"{bucket} ({reason})."
            )
        return StorageError(message)

    def _missing_bucket(self, exc: Exception, action: str, key: str) -> None:
        """obstore reports a missing bucket as a missing object: say which it is."""
        if "<Code>NoSuchBucket</Code>" in str(exc):
            raise self._failure(exc, action, key) from exc

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        check_key(key)
        try:
            # One request: an S3 PUT is atomic, and a single part leaves no orphaned uploads.
            await obstore.put_async(
                self._store,
                key,
                data,
                attributes={"Content-Type": content_type},
                use_multipart=False,
            )
        except (BaseError, OSError) as exc:
            raise self._failure(exc, "saved", key) from exc

    async def get(self, key: str) -> bytes | None:
        check_key(key)
        try:
            result = await obstore.get_async(self._store, key)
            return bytes(await result.bytes_async())
        except FileNotFoundError as exc:
            self._missing_bucket(exc, "read", key)
            return None
        except (BaseError, OSError) as exc:
            raise self._failure(exc, "read", key) from exc

    async def exists(self, key: str) -> bool:
        check_key(key)
        try:
            await obstore.head_async(self._store, key)
        except FileNotFoundError as exc:
            self._missing_bucket(exc, "looked up", key)
            return False
        except (BaseError, OSError) as exc:
            raise self._failure(exc, "looked up", key) from exc
        return True

    async def copy(self, source: str, target: str) -> None:
        check_key(source)
        check_key(target)
        try:
            # Server-side: the bytes never travel through this process.
            await obstore.copy_async(self._store, source, target)
        except FileNotFoundError as exc:
            self._missing_bucket(exc, "copied", target)
            raise StorageError(f"There is no image {source} to copy to {target}.") from exc
        except (BaseError, OSError) as exc:
            raise self._failure(exc, "copied", target) from exc

    async def delete_prefix(self, prefix: str) -> int:
        # The trailing slash matters: "images/abc/" must not match "images/abcd/...".
        folder = check_prefix(prefix) + "/"
        try:
            paths = [
                meta["path"]
                async for chunk in obstore.list(self._store, folder, chunk_size=1000)
                for meta in chunk
            ]
            if paths:
                # Bulk DeleteObjects, up to 1000 keys a request.
                await obstore.delete_async(self._store, paths)
        except (BaseError, OSError) as exc:
            raise self._failure(exc, "deleted", prefix) from exc
        return len(paths)

    async def check(self) -> None:
        # Not a valid key on purpose (a leading dot), so it can never collide with an image.
        probe = f".imagine-check-{secrets.token_hex(8)}"
        try:
            await obstore.put_async(self._store, probe, b"ok", use_multipart=False)
            await obstore.delete_async(self._store, probe)
        except (BaseError, OSError) as exc:
            raise self._failure(exc, "written", "a test object") from exc
