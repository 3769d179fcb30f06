from __future__ import annotations

import json

from imagine.ratelimit import RateLimiter
from tests.service.conftest import ClientFactory


def test_bucket_allows_a_burst_then_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(3, clock=lambda: now[0])
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == 20.0  # one per 20 s at 3 a minute
    assert limiter.acquire("b") == 0.0  # keys are independent
    now[0] = 20.0
    assert limiter.acquire("a") == 0.0
    assert RateLimiter(0).acquire("a") == 0.0


async def test_per_user_limit_is_a_clear_429(make_client: ClientFactory) -> None:
    client = await make_client(rate_per_user=2)
    ref = json.dumps({"user": "77"})
    for _ in range(2):
        assert (await client.post("/v2/imagine", json={"msg": "a cat", "ref": ref})).status == 200
    refused = await client.post("/v2/imagine", json={"msg": "a cat", "ref": ref})
    body = await refused.json()
    assert refused.status == 429
    assert "user 77" in body["msg"]
    assert "Try again in 30 s" in body["msg"]
    assert refused.headers["Retry-After"] == "30"
    other = await client.post(
        "/v2/imagine", json={"msg": "a cat", "ref": json.dumps({"user": "78"})}
    )
    assert other.status == 200


async def test_per_token_limit(make_client: ClientFactory) -> None:
    client = await make_client(api_tokens=("t1", "t2"), rate_per_token=1)
    auth1, auth2 = {"Authorization": "Bearer t1"}, {"Authorization": "Bearer t2"}
    assert (await client.post("/v2/imagine", json={"msg": "a"}, headers=auth1)).status == 200
    refused = await client.post("/v2/imagine", json={"msg": "a"}, headers=auth1)
    assert refused.status == 429
    assert "API token" in (await refused.json())["msg"]
    assert (await client.post("/v2/imagine", json={"msg": "a"}, headers=auth2)).status == 200
