"""``BENCH_QUICK=1``: every benchmark at a smaller size, so that the whole suite (``make
bench-quick``) runs in a few minutes with the same JSON fields; the README's figures come from
the full mode. Each JSON line says which mode made it (``"quick": true``)."""

from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")

QUICK = os.environ.get("BENCH_QUICK", "").strip() not in ("", "0")


def pick(full: T, quick: T) -> T:
    """``full`` normally, ``quick`` under BENCH_QUICK=1."""
    return quick if QUICK else full
