"""The queue is fair: one user's many jobs never hold back another user's first."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from imagine.fairqueue import FairQueue, tier_for


def drain(queue: FairQueue) -> list[str]:
    order = []
    while (job := queue.pop()) is not None:
        order.append(job)
    return order


def test_hundred_users_ten_jobs_each_every_first_before_any_third() -> None:
    queue = FairQueue()
    for user in range(100):
        for n in range(10):
            queue.push(f"{user}-{n}", f"user{user}")
    order = drain(queue)
    started = {job: index for index, job in enumerate(order)}
    last_first = max(started[f"{u}-0"] for u in range(100))
    first_third = min(started[f"{u}-2"] for u in range(100))
    assert last_first < first_third
    assert len(order) == 1000


def test_a_late_user_is_not_stuck_behind_an_early_users_backlog() -> None:
    queue = FairQueue()
    for n in range(10):
        queue.push(f"a{n}", "alice")
    queue.pop()
    queue.push("b0", "bob")
    assert queue.position("b0") == 1
    assert drain(queue)[:2] == ["a1", "b0"]


def test_relax_waits_and_turbo_jumps_no_one() -> None:
    queue = FairQueue()
    queue.push("relaxed", "a", tier_for("relax"))
    queue.push("normal", "b", tier_for(None))
    queue.push("hurry", "c", tier_for("turbo"))
    assert drain(queue) == ["normal", "hurry", "relaxed"]


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 1)), min_size=1, max_size=60))
def test_position_predicts_the_order(pushes: list[tuple[int, int]]) -> None:
    queue = FairQueue()
    for index, (owner, tier) in enumerate(pushes):
        queue.push(f"j{index}", f"o{owner}", tier)
    predicted = {f"j{i}": queue.position(f"j{i}") for i in range(len(pushes))}
    order = drain(queue)
    assert predicted == {job: index for index, job in enumerate(order)}
