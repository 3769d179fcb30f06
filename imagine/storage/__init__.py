"""Image storage: a folder on this machine (one box) or an S3 bucket (many processes).

``open_storage`` picks one from IMAGINE_STORAGE_URL; the rest of the service sees only
:class:`ImageStorage`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from imagine.storage.base import ImageStorage, StorageError, check_key, check_prefix
from imagine.storage.local import LocalStorage
from imagine.storage.s3 import S3Storage

__all__ = [
    "ImageStorage",
    "LocalStorage",
    "S3Storage",
    "StorageError",
    "check_key",
    "check_prefix",
    "open_storage",
]

# S3's rules for bucket names (lowercase letters, digits, dots and hyphens, 3 to 63 long).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def open_storage(
    storage_url: str, data_dir: Path, environ: Mapping[str, str], s3_endpoint: str = ""
) -> ImageStorage:
    """The storage IMAGINE_STORAGE_URL names: empty → the data folder; ``s3://bucket/prefix``
    → that bucket, at IMAGINE_S3_ENDPOINT (``s3_endpoint``) or AWS when that is empty.

    Raises ValueError with a sentence for a URL it cannot use.
    """
    url = storage_url.strip()
    if not url:
        return LocalStorage(data_dir)
    usage = (
        "IMAGINE_STORAGE_URL must be empty (the data folder) or s3://bucket/optional/prefix, "
        f"got {url!r}."
    )
    if not url.startswith("s3://"):
        raise ValueError(usage)
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not _BUCKET.fullmatch(bucket):
        raise ValueError(
            f"{usage} A bucket name has 3 to 63 lowercase letters, digits, dots or hyphens."
        )
    prefix = prefix.strip("/")
    if prefix:
        try:
            check_key(prefix)
        except ValueError:
            raise ValueError(
                f"{usage} The prefix may hold only letters, digits, '.', '_', '-' and '/'."
            ) from None
    endpoint = s3_endpoint.strip()
    if endpoint and not re.match(r"https?://[^/]", endpoint):
        raise ValueError(
            f"IMAGINE_S3_ENDPOINT must be an http:// or https:// URL such as "
            f"http://minio:9000, got {endpoint!r}."
        )
    return S3Storage(bucket, prefix, endpoint, environ=environ)
