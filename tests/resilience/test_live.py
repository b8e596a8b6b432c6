from __future__ import annotations

import random

import pytest
from pydantic import SecretStr
from resilience_support import FakeClock, make_settings

from ccrouter.errors import AuthenticationError, UpstreamRateLimitError, UpstreamStatusError
from ccrouter.messages import Usage
from ccrouter.resilience.live import LiveState, credential_id
from ccrouter.status import ProviderStatusSource


def _live(clock: FakeClock, routing: dict[str, object] | None = None, **provider: object) -> LiveState:
    return LiveState(make_settings(routing, **provider), clock=clock, rng=random.Random(3))


async def _fail_429(live: LiveState, cred: str, retry_after: float | None) -> None:
    assert await live.acquire("a", "m", cred) is None
    exc = UpstreamRateLimitError("slow down", provider="a", retry_after=retry_after)
    assert await live.on_failure("a", "m", cred, exc, 0.1) == "rate_limit"


async def test_retry_after_blocks_then_ramps(clock: FakeClock) -> None:
    live = _live(clock, {"recovery_s": 10.0, "recovery_floor": 0.1})
    cred = live.credentials("a")[0]
    await _fail_429(live, cred, retry_after=5.0)
    for _ in range(5):
        (state,) = await live.assess([("a", "m")])
        assert state.tier == 2
        assert 0 < state.cooldown_s <= 5.0
        clock.advance(0.99)
    clock.advance(0.1)  # 5.05 s after the 429: the cooldown is over, the ramp begins
    shares = []
    for _ in range(4):
        admitted = 0
        for _ in range(400):
            (state,) = await live.assess([("a", "m")])
            assert state.tier in (0, 1)
            admitted += state.tier == 0
        shares.append(admitted / 400)
        clock.advance(3.0)
    # A rising share of traffic: ~10%, ~37%, ~64%, ~91%, then all of it.
    assert shares[0] < 0.2
    assert shares[0] < shares[1] < shares[2] < shares[3]
    assert shares[3] > 0.8
    (state,) = await live.assess([("a", "m")])
    assert state.tier == 0


async def test_backoff_without_retry_after(clock: FakeClock) -> None:
    live = _live(clock, {"backoff_base_s": 2.0, "backoff_max_s": 60.0})
    cred = live.credentials("a")[0]
    await _fail_429(live, cred, retry_after=None)
    (state,) = await live.assess([("a", "m")])
    assert state.tier == 2
    assert 2.0 <= state.cooldown_s <= 4.0
    clock.advance(4.0)
    await _fail_429(live, cred, retry_after=None)
    (state,) = await live.assess([("a", "m")])
    assert 4.0 <= state.cooldown_s <= 6.0


async def test_configured_rpm_is_a_hard_cap_and_headroom_skips(clock: FakeClock) -> None:
    live = _live(clock, rpm=5)
    cred = live.credentials("a")[0]
    for expected_tier in (0, 0, 0, 0, 1):
        (state,) = await live.assess([("a", "m")])
        assert state.tier == expected_tier
        assert await live.acquire("a", "m", cred) is None
        await live.on_success("a", "m", cred, 0.2, Usage(input_tokens=10, output_tokens=5))
    (state,) = await live.assess([("a", "m")])
    assert state.headroom == 0.0
    assert state.notes == ["at 100% of its limit"]
    assert str(await live.acquire("a", "m", cred)) == "configured rate limit reached"
    clock.advance(60.5)
    assert await live.acquire("a", "m", cred) is None


async def test_credentials_rotate_and_auth_failures_set_one_aside(clock: FakeClock) -> None:
    live = _live(clock, api_keys=["sk-one", "sk-two"])
    creds = live.credentials("a")
    assert creds == [credential_id(0, SecretStr("sk-one")), credential_id(1, SecretStr("sk-two"))]
    assert creds[0].startswith("k0-")
    assert "sk-one" not in creds[0]
    picked = [(await live.assess([("a", "m")]))[0].credential for _ in range(4)]
    assert picked == [creds[0], creds[1], creds[0], creds[1]]
    await live.on_failure("a", "m", creds[0], AuthenticationError("bad key"), 0.1)
    picked = [(await live.assess([("a", "m")]))[0].credential for _ in range(3)]
    assert picked == [creds[1]] * 3


async def test_breaker_counts_server_errors_not_client_errors(clock: FakeClock) -> None:
    live = _live(clock, {"breaker": {"consecutive_failures": 2}})
    cred = live.credentials("a")[0]
    bad_request = UpstreamStatusError("bad", provider="a", status=400, error_type="invalid_request_error")
    for _ in range(3):
        await live.on_failure("a", "m", cred, bad_request, 0.1)
    assert live.breaker("a", "m").state == "closed"
    server = UpstreamStatusError("boom", provider="a", status=500)
    for _ in range(2):
        await live.on_failure("a", "m", cred, server, 0.1)
    (state,) = await live.assess([("a", "m")])
    assert (state.tier, state.breaker) == (2, "open")
    assert str(await live.acquire("a", "m", cred)) == "breaker open"
    source: ProviderStatusSource = live  # what metrics and health read
    statuses = {s.provider: s for s in source.provider_statuses()}
    assert statuses["a"].breaker == "open"
    assert statuses["a"].health_score == 0.0
    assert statuses["b"].breaker == "closed"


async def test_announced_limits_from_headers(clock: FakeClock) -> None:
    live = _live(clock)
    cred = live.credentials("a")[0]
    live.on_headers(
        "a",
        cred,
        "m",
        {
            "x-ratelimit-limit-requests": "100",
            "x-ratelimit-remaining-requests": "10",
            "x-ratelimit-reset-requests": "30s",
        },
    )
    (state,) = await live.assess([("a", "m")])
    assert state.headroom == pytest.approx(0.1)
    assert state.tier == 1
    clock.advance(31)
    (state,) = await live.assess([("a", "m")])
    assert (state.headroom, state.tier) == (1.0, 0)


async def test_a_latency_without_recent_samples_is_forgotten_so_the_target_earns_traffic_back(
    clock: FakeClock,
) -> None:
    live = _live(clock)
    slow, fast = live.credentials("a")[0], live.credentials("b")[0]
    for provider, cred, seconds in (("a", slow, 8.0), ("b", fast, 0.5)):
        assert await live.acquire(provider, "m", cred) is None
        await live.on_success(provider, "m", cred, seconds, Usage(output_tokens=5))
    a, b = await live.assess([("a", "m"), ("b", "m")])
    assert (a.latency_s, b.latency_s) == (8.0, 0.5)
    clock.advance(301.0)  # traffic went to b only; a's one slow call is now old news
    assert await live.acquire("b", "m", fast) is None
    await live.on_success("b", "m", fast, 0.5, Usage(output_tokens=5))
    a, b = await live.assess([("a", "m"), ("b", "m")])
    assert (a.latency_s, b.latency_s) == (None, 0.5)  # unknown: the latency factor tries a again
    # a's next sample starts a fresh average instead of being blended with the stale 8 s.
    assert await live.acquire("a", "m", slow) is None
    await live.on_success("a", "m", slow, 0.5, Usage(output_tokens=5))
    (a,) = await live.assess([("a", "m")])
    assert a.latency_s == 0.5
