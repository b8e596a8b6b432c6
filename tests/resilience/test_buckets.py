"""The bucket ring behind every per-target window: conservative sums, and memory that does not grow
with traffic (counted in buckets, over a simulated day with a fake clock)."""

from __future__ import annotations

import random

import pytest
from resilience_support import FakeClock, make_settings

from ccrouter.config import BreakerConfig
from ccrouter.exchange import Exchange
from ccrouter.messages import Usage
from ccrouter.resilience.breaker import CircuitBreaker
from ccrouter.resilience.buckets import BucketRing
from ccrouter.resilience.live import LiveState
from ccrouter.resilience.ratelimits import ConfiguredLimits
from ccrouter.resilience.stats import TargetStats
from ccrouter.resilience.windows import MemoryWindows
from ccrouter.telemetry.alerts import RecentRequests

DAY = 86_400.0
EVENTS = 200_000


def test_sums_fields_and_expires_a_bucket_once_its_newest_event_is_window_old() -> None:
    ring = BucketRing(10.0, 1.0, 2)
    ring.add(100.2, 0)
    ring.add(100.7, 1, 5.0)
    ring.add(103.0, 0)
    assert list(ring.totals) == [2.0, 5.0]
    ring.expire(110.5)  # 100.7 is not 10 s old yet: the whole first bucket still counts
    assert list(ring.totals) == [2.0, 5.0]
    ring.expire(110.7)
    assert list(ring.totals) == [1.0, 0.0]
    ring.expire(113.0)
    assert (list(ring.totals), ring.live) == ([0.0, 0.0], 0)


def test_never_counts_less_than_the_exact_window_nor_more_than_one_bucket_extra() -> None:
    rng = random.Random(7)
    window, width = 60.0, 1.0
    ring = BucketRing(window, width, 1)
    times: list[float] = []
    now = 1_000_000.0
    for _ in range(20_000):
        now += rng.expovariate(20.0) if rng.random() < 0.99 else rng.uniform(0, 90)
        ring.add(now, 0)
        times.append(now)
        if rng.random() < 0.05:
            exact = sum(1 for t in times if t > now - window)
            loose = sum(1 for t in times if t > now - window - width)
            assert exact <= ring.totals[0] <= loose
            times = [t for t in times if t > now - window - width]


def test_a_clock_stepping_back_counts_in_the_newest_bucket() -> None:
    ring = BucketRing(10.0, 1.0, 1)
    ring.add(200.0, 0)
    ring.add(195.0, 0)  # wall clock stepped back 5 s
    ring.expire(209.9)
    assert ring.totals[0] == 2.0
    ring.expire(210.0)
    assert ring.totals[0] == 0.0


def test_clear_empties_every_bucket() -> None:
    ring = BucketRing(10.0, 1.0, 1)
    for t in range(5):
        ring.add(float(t), 0)
    ring.clear()
    assert (ring.totals[0], ring.live) == (0.0, 0)
    ring.add(6.0, 0)
    assert ring.totals[0] == 1.0


def _exchange(duration: float, status: int = 200) -> Exchange:
    exchange = Exchange(request_id="r", endpoint="messages")
    exchange.status, exchange.duration_s = status, duration
    return exchange


async def test_a_day_of_traffic_keeps_a_fixed_number_of_buckets(clock: FakeClock) -> None:
    """200,000 requests over 24 h: every window holds at most its fixed slots, never an entry each."""
    windows = MemoryWindows()
    stats = TargetStats()
    breaker = CircuitBreaker(BreakerConfig(), clock)
    recent = RecentRequests(300.0, clock)
    limits = ConfiguredLimits()
    await windows.set_cooldown("p/m/k0", 0.0)  # creates the key's windows
    window = windows._windows["p/m/k0"]
    rings = {
        "minute": window.minute,
        "day": window.day,
        "stats": stats.outcomes,
        "breaker": breaker._calls,
        "alerts": recent._ring,
    }
    slots = {name: ring.slots for name, ring in rings.items()}
    assert slots == {"minute": 62, "day": 290, "stats": 62, "breaker": 62, "alerts": 62}
    peak = dict.fromkeys(rings, 0)
    step = DAY / EVENTS
    for i in range(EVENTS):
        assert await windows.reserve("p/m/k0", limits, clock.now)
        await windows.add_tokens("p/m/k0", 10, clock.now)
        stats.record(clock.now, "ok" if i % 10 else "5xx", 0.5)
        breaker.record(failed=False, duration_s=0.5)
        recent.on_exchange(_exchange(0.5 + (i % 7)))
        if i % 1000 == 0:
            for name, ring in rings.items():
                peak[name] = max(peak[name], ring.live)
        clock.advance(step)
    assert list(windows._windows) == ["p/m/k0"]
    assert {name: ring.slots for name, ring in rings.items()} == slots
    # The rings fill up (the traffic never pauses) but never hold more buckets than their slots.
    assert peak == {"minute": 61, "day": peak["day"], "stats": 61, "breaker": 61, "alerts": 61}
    assert 280 <= peak["day"] <= slots["day"]
    (usage,) = await windows.usage(["p/m/k0"], clock.now)
    # 60 s at one request per 0.432 s is 138-139 requests; at most one more 1 s bucket on top.
    assert 138 <= usage.requests_minute <= 142
    assert usage.tokens_minute == 10 * usage.requests_minute
    assert usage.requests_day == EVENTS  # the whole day still counts (the first request is < 24 h old)
    summary = recent.snapshot()
    assert 694 <= summary.requests <= 720  # 300 s (+5 s of bucket) at 0.432 s
    # Durations 0.5, 1.5 .. 6.5 in turn: the top seventh holds the 95th percentile.
    assert summary.p95_s == pytest.approx(6.5)
    counts = stats.counts()
    assert set(counts) == {"ok", "5xx"}
    assert 694 <= counts.total() <= 706  # 300 s (+5 s of bucket)
    assert counts["5xx"] / counts.total() == pytest.approx(0.1, abs=0.01)
    assert breaker.state == "closed"


async def test_live_state_keeps_working_over_the_day(clock: FakeClock) -> None:
    live = LiveState(make_settings(rpm=1000), clock=clock)
    cred = live.credentials("a")[0]
    for _ in range(2_000):
        assert await live.acquire("a", "m", cred) is None
        await live.on_success("a", "m", cred, 0.2, Usage(input_tokens=10, output_tokens=5))
        clock.advance(43.2)
    (state,) = await live.assess([("a", "m")])
    assert state.tier == 0
    assert state.success_rate == 1.0


async def test_memory_windows_limits_are_conservative(clock: FakeClock) -> None:
    windows = MemoryWindows()
    limits = ConfiguredLimits(rpd=3, tpm=100)
    start = clock.now
    for offset in (0.0, 100.0, 200.0):
        clock.now = start + offset
        assert await windows.reserve("k", limits, clock.now)
    assert not await windows.reserve("k", limits, clock.now)
    # Exactly a day after the first request an exact window would free one slot; its 5-minute bucket
    # holds a younger request too, so the bucket (and the slot) stays until that one is a day old.
    clock.now = start + DAY + 1
    assert not await windows.reserve("k", limits, clock.now)
    clock.now = start + DAY + 200
    assert await windows.reserve("k", limits, clock.now)
    await windows.add_tokens("k", 100, clock.now)
    (usage,) = await windows.usage(["k"], clock.now)
    assert (usage.requests_minute, usage.tokens_minute, usage.requests_day) == (1, 100, 1)
    assert not await windows.reserve("k", ConfiguredLimits(tpm=100), clock.now)
    clock.advance(60.0)
    assert await windows.reserve("k", ConfiguredLimits(tpm=100), clock.now)
