"""Who a job belongs to, and what a request may take: tenancy, rate limits and quotas.

A job belongs to the API token that created it (its *scope*); within a token, to the user named
in ``ref``. The per-user cap and the queue limit are :class:`~imagine.store.Quota`s checked in
the transaction that inserts the jobs, so they hold under bursts and across processes. Rate
limits are token buckets in this process's memory (they count per API instance).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math

from imagine.codes import ResultCode
from imagine.errors import ServiceError
from imagine.ratelimit import RateLimiter
from imagine.settings import Settings
from imagine.store import LimitReached, Quota


def token_scope(token: str | None) -> str:
    """A stable name for an API token that does not store the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()[:12] if token else "local"


def ref_user(ref: str) -> str:
    """The "user" of a JSON-object ref (the bot sends the Discord user id), or ""."""
    if not ref.lstrip().startswith("{"):
        return ""
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        data = json.loads(ref)
        if isinstance(data, dict):
            return str(data.get("user") or data.get("userId") or "")
    return ""


def owner_of(ref: str, token: str | None) -> str:
    """Who a job belongs to, for fairness and per-user counts: the ref's "user", scoped by token."""
    user = ref_user(ref)
    return f"{token_scope(token)}:{user}" if user else token_scope(token)


def belongs_to(owner: str, token: str | None) -> bool:
    """Whether a job with this owner was made with this token (the scope comes before any ':')."""
    return owner.partition(":")[0] == token_scope(token)


class Limits:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._token_rate = RateLimiter(settings.rate_per_token)
        self._user_rate = RateLimiter(settings.rate_per_user)

    def check_rate(self, ref: str, token: str | None) -> None:
        if token and (wait := self._token_rate.acquire(token_scope(token))):
            raise ServiceError(
                429,
                None,
                f"Too many requests with this API token: at most {self.settings.rate_per_token} a "
                f"minute. Try again in {math.ceil(wait)} s.",
                retryAfter=math.ceil(wait),
            )
        if (user := ref_user(ref)) and (wait := self._user_rate.acquire(owner_of(ref, token))):
            raise ServiceError(
                429,
                None,
                f"Too many requests from user {user}: at most {self.settings.rate_per_user} a minute. "
                f"Try again in {math.ceil(wait)} s.",
                retryAfter=math.ceil(wait),
            )

    def quota(self, ref: str, token: str | None, *, waiting: int, limit: int | None) -> Quota:
        """What a submission charged to ``ref``'s user may take: the per-user cap applies when ref
        names a user (a client may ask for a lower one); the queue limit to jobs that wait."""
        cap: int | None = None
        if ref_user(ref):
            cap = self.settings.max_jobs_per_user
            cap = min(cap, limit) if limit is not None and limit > 0 else cap
        return Quota(owner_of(ref, token), cap, self.settings.queue_limit, waiting)


def refusal(reached: LimitReached, adding: int) -> ServiceError:
    """The 429 a client reads when a quota refuses a submission."""
    if reached.kind == "queue":
        return ServiceError(
            429,
            ResultCode.QUEUE_FULL,
            f"The queue is full: {reached.current} jobs are waiting and the limit is "
            f"{reached.limit}. Try again in a minute.",
            retryAfter=60,
        )
    unfinished = reached.current
    adds = f"this adds {adding}" if adding > 1 else "this adds one more"
    return ServiceError(
        429,
        None,
        f"You have {unfinished} unfinished job{'s' * (unfinished != 1)} and {adds}; the limit "
        f"is {reached.limit}. Wait for some to finish.",
    )
