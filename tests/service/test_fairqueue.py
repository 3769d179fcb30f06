"""The queue is fair: one user's many jobs never hold back another user's first.

The rule is decided where workers claim (the database's claim query); ``claim_order`` replays it
for queue positions, and the last tests check the two agree on a real store.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagine.fairqueue import Queued, claim_order, positions, tier_for
from imagine.jobs import Job
from imagine.store import JobStore, SQLiteStore


def queued(pushes: list[tuple[str, str, int]]) -> list[Queued]:
    """(job, owner, tier) in arrival order as claim_order's rows."""
    return [(job, owner, tier, seq) for seq, (job, owner, tier) in enumerate(pushes, 1)]


def test_hundred_users_ten_jobs_each_every_first_before_any_third() -> None:
    rows = queued([(f"{u}-{n}", f"user{u}", 0) for u in range(100) for n in range(10)])
    order = claim_order(rows, {}, len(rows))
    started = {job: index for index, job in enumerate(order)}
    last_first = max(started[f"{u}-0"] for u in range(100))
    first_third = min(started[f"{u}-2"] for u in range(100))
    assert last_first < first_third
    assert len(order) == 1000


def test_a_late_user_is_not_stuck_behind_an_early_users_backlog() -> None:
    rows = queued([(f"a{n}", "alice", 0) for n in range(10)])
    # a0 was claimed (alice went to the back), then bob's first job arrived
    rows = [*rows[1:], ("b0", "bob", 0, 11)]
    turns = {"alice": (10, 1.0)}
    assert positions(rows, turns, 11)["b0"] == 1
    assert claim_order(rows, turns, 11)[:2] == ["a1", "b0"]


def test_two_owners_alternate_even_when_the_next_job_is_the_newest() -> None:
    """b's second job was the newest when b was served: b still goes to the back (a bug once let
    b take two turns in a row here)."""
    rows = queued([("a1", "a", 0), ("a2", "a", 0), ("a3", "a", 0), ("b1", "b", 0), ("b2", "b", 0)])
    assert claim_order(rows, {}, 5) == ["a1", "b1", "a2", "b2", "a3"]


async def test_two_owners_alternate_on_a_real_store(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "jobs.sqlite3")
    try:
        jobs = [_job(owner, 0) for owner in "aaabb"]
        for n, job in enumerate(jobs):
            job.id, job.button_message_id = f"{job.owner}{n}", f"b{n}"
        await store.add(jobs)
        order = []
        while (taken := await store.claim("w", 30)) is not None:
            order.append(taken[0].owner)
        assert order == ["a", "b", "a", "b", "a"]
    finally:
        await store.close()


def test_relax_waits_and_turbo_jumps_no_one() -> None:
    rows = queued([("relaxed", "a", tier_for("relax")), ("normal", "b", tier_for(None)),
                   ("hurry", "c", tier_for("turbo"))])  # fmt: skip
    assert claim_order(rows, {}, 3) == ["normal", "hurry", "relaxed"]


def _job(owner: str, tier: int) -> Job:
    return Job(id=f"{owner}-{tier}-{id(object())}", button_message_id=f"b{id(object())}",
               action="imagine", type="imagine", owner=owner, content="x", prompt={},
               priority=tier)  # fmt: skip


async def _claims_match_prediction(store: JobStore, pushes: list[tuple[int, int]]) -> None:
    """Add the jobs (a first claim in between, so turns exist), predict, then claim them all."""
    half = len(pushes) // 2
    jobs = []
    for index, (owner, tier) in enumerate(pushes):
        job = _job(f"o{owner}", tier)
        job.id = f"j{index}"
        job.button_message_id = f"b{index}"
        jobs.append(job)
    await store.add(jobs[:half])
    if half:
        assert await store.claim("w", 30) is not None
    if jobs[half:]:
        await store.add(jobs[half:])
    predicted = claim_order(*await store.queue_snapshot())
    claimed = []
    while (taken := await store.claim("w", 30)) is not None:
        claimed.append(taken[0].id)
    assert claimed == predicted


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 1)), min_size=1, max_size=40))
def test_the_claim_query_and_the_replay_agree_sqlite(
    tmp_path: Path, pushes: list[tuple[int, int]]
) -> None:
    async def run() -> None:
        folder = Path(tempfile.mkdtemp(dir=tmp_path))  # a fresh database per example, replays too
        store = await SQLiteStore.open(folder / "jobs.sqlite3")
        try:
            await _claims_match_prediction(store, pushes)
        finally:
            await store.close()

    asyncio.run(run())


async def test_the_claim_query_and_the_replay_agree_postgres(pg_url: str) -> None:
    from imagine.store.postgres import PostgresStore

    store = await PostgresStore.open(pg_url)
    try:
        pushes = [(n % 4, 1 if n % 7 == 0 else 0) for n in range(30)] + [(5, 0)] * 5
        await _claims_match_prediction(store, pushes)
    finally:
        await store.close()
