"""The queue's fairness rule, and the order it gives to the jobs waiting now.

Workers claim jobs in the database (:meth:`JobStore.claim`), in this order:

- two tiers: fast, then relax (a user's own choice to wait). ``--turbo`` counts as fast: a
  flag anyone can type must not let them jump everyone else;
- within a tier, owners take turns: each turn serves the oldest job of the owner at the front
  of the line, then that owner goes to the back, behind every job that exists at that moment.
  An owner who had nothing queued joins the line at their new job.

So one user's ten jobs never hold back another user's first, and with many users queued at once
every user's first job starts before anyone's second, whichever worker claims them.
:func:`claim_order` replays the same rule in Python for queue positions; a test checks the two
agree.
"""

from __future__ import annotations

import heapq
import itertools

TIERS = {"fast": 0, "relax": 1}
DEFAULT_TIER = TIERS["fast"]

Queued = tuple[str, str, int, int]
"""(job id, owner, tier, seq): seq orders jobs by arrival."""


def tier_for(speed: str | None) -> int:
    """--relax waits behind everyone; --fast, --turbo and nothing are all the fast tier."""
    return TIERS["relax"] if speed == "relax" else DEFAULT_TIER


def turn_key(
    tier: int, head_seq: int, turn: tuple[int, float] | None
) -> tuple[int, int, int, float, int]:
    """Where an owner's oldest job in ``tier`` stands in line (smaller goes first); ``turn`` is
    the owner's last (served_seq, served_at). The claim query's ORDER BY, in Python."""
    served_seq, served_at = turn if turn is not None else (0, 0.0)
    if served_seq >= head_seq:  # served since this job arrived: behind what existed then
        return (tier, served_seq, 1, served_at, head_seq)
    return (tier, head_seq, 0, 0.0, head_seq)


def claim_order(
    queued: list[Queued], turns: dict[str, tuple[int, float]], top_seq: int
) -> list[str]:
    """The order in which workers would claim ``queued`` if nothing else arrived; ``top_seq``
    is the newest job's seq (what a served owner goes behind)."""
    lines: dict[tuple[int, str], list[tuple[int, str]]] = {}
    for job_id, owner, tier, seq in sorted(queued, key=lambda q: q[3]):
        lines.setdefault((tier, owner), []).append((seq, job_id))
    turns = dict(turns)
    clock = itertools.count(1)
    version: dict[str, int] = {}
    heap = []
    for (tier, owner), jobs in lines.items():
        heap.append((turn_key(tier, jobs[0][0], turns.get(owner)), owner, 0))
    heapq.heapify(heap)
    heads = dict.fromkeys(lines, 0)
    order: list[str] = []
    while heap:
        key, owner, seen = heapq.heappop(heap)
        tier = key[0]
        jobs, at = lines[(tier, owner)], heads[(tier, owner)]
        if seen != version.get(owner, 0):  # the owner was served since: its place moved
            heapq.heappush(heap, (turn_key(tier, jobs[at][0], turns.get(owner)), owner,
                                  version.get(owner, 0)))  # fmt: skip
            continue
        order.append(jobs[at][1])
        heads[(tier, owner)] = at + 1
        # a stand-in for the turns counter: later claims have a larger served_at
        turns[owner] = (top_seq, float(next(clock)) + 1e12)
        version[owner] = version.get(owner, 0) + 1
        if at + 1 < len(jobs):
            heapq.heappush(heap, (turn_key(tier, jobs[at + 1][0], turns[owner]), owner,
                                  version[owner]))  # fmt: skip
    return order


def positions(
    queued: list[Queued], turns: dict[str, tuple[int, float]], top_seq: int
) -> dict[str, int]:
    """How many jobs start before each queued one (0 = next)."""
    return {job_id: n for n, job_id in enumerate(claim_order(queued, turns, top_seq))}
