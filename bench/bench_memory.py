"""Memory: RSS of the bot process (with its embedded service) idle after login, after N/2 and after N jobs
through the fake Discord. Prints one JSON line. Goal (issue 8): no growth beyond a bound once warm — here,
the second half of the jobs may add at most 25 MiB."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bot import rss_mib, running_bot
from _quick import QUICK, pick

from tests.fakediscord import FakeDiscord

JOBS = int(sys.argv[1]) if len(sys.argv) > 1 else pick(1000, 200)
WAVE = 20


async def run_jobs(fake: FakeDiscord, users: list[dict[str, str]], count: int, start: int) -> None:
    for wave in range(start, start + count, WAVE):
        inters = [
            await fake.slash(
                "imagine", {"prompt": f"a lighthouse, take {n}"}, user=users[n % len(users)]
            )
            for n in range(wave, min(wave + WAVE, start + count))
        ]
        for inter in inters:
            await fake.wait_for(
                lambda i=inter: i.original is not None and bool(i.original["attachments"]), 120
            )


async def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        env = {
            "IMAGINE_MAX_CONCURRENT": "2",
            "IMAGINE_RATE_PER_USER": "0",
            "IMAGINE_QUEUE_LIMIT": "1000",
        }
        async with running_bot(Path(home), **env) as (fake, process):
            users = [fake.add_user(f"user{n}") for n in range(WAVE)]
            await asyncio.sleep(1.0)
            idle = rss_mib(process.pid)
            await run_jobs(fake, users, JOBS // 2, 0)
            half = rss_mib(process.pid)
            await run_jobs(fake, users, JOBS - JOBS // 2, JOBS // 2)
            full = rss_mib(process.pid)
    print(json.dumps({
        "bench": "memory", "quick": QUICK, "jobs": JOBS, "rss_idle_mib": round(idle, 1), f"rss_after_{JOBS // 2}_mib": round(half, 1),
        f"rss_after_{JOBS}_mib": round(full, 1), "goal_second_half_growth_le_25mib": full - half <= 25,
    }))  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
