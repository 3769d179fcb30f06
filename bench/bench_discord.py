"""Discord latency through the fake Discord and the real bot: INTERACTION_CREATE → defer, and job done (the
service's finished_at) → grid message posted. Prints one JSON line.
Goals (issue 8): defer ≤ 50 ms p99; job done → grid posted ≤ 300 ms."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bot import running_bot
from _quick import QUICK, pick

JOBS = int(sys.argv[1]) if len(sys.argv) > 1 else pick(20, 8)


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        async with running_bot(Path(home), IMAGINE_PLACEHOLDER_SECONDS="0.3") as (fake, _):
            wall_minus_mono = time.time() - time.monotonic()
            defers, posts = [], []
            for n in range(JOBS):
                user = fake.add_user(f"user{n}")
                inter = await fake.slash(
                    "imagine", {"prompt": f"a lighthouse, take {n}"}, user=user
                )

                def posted(token: str = inter.token) -> dict[str, object] | None:
                    return next(
                        (c for c in fake.calls
                         if token in c["path"] and c["method"] == "PATCH" and c["files"] and c["status"] == 200),
                        None,
                    )  # fmt: skip

                call = await fake.wait_for(posted, 30)
                assert inter.ack_delay is not None
                defers.append(inter.ack_delay)
                with sqlite3.connect(Path(home) / "data" / "jobs.sqlite3") as db:
                    (finished,) = db.execute(
                        "SELECT finished_at FROM jobs ORDER BY rowid DESC LIMIT 1"
                    ).fetchone()
                done = datetime.fromisoformat(finished).timestamp() - wall_minus_mono
                posts.append(float(call["time"]) - done)  # type: ignore[arg-type]
    print(json.dumps({
        "bench": "discord", "quick": QUICK, "jobs": JOBS,
        "defer_p50_ms": round(statistics.median(defers) * 1000, 1), "defer_p99_ms": round(p99(defers) * 1000, 1),
        "done_to_posted_p50_ms": round(statistics.median(posts) * 1000, 1),
        "done_to_posted_max_ms": round(max(posts) * 1000, 1),
        "goals": {"defer_p99_le_50ms": p99(defers) <= 0.05, "done_to_posted_p50_le_300ms": statistics.median(posts) <= 0.3},
    }))  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
