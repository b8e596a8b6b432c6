"""The Overview's traffic recorder: its sums, rates and percentiles, and that it stays bounded."""

from __future__ import annotations

import sys
import time

import pytest

from ccrouter.exchange import Exchange
from ccrouter.messages import Usage
from ccrouter.telemetry.traffic import (
    ALL,
    LATENCY_BOUNDS_S,
    MAX_SERIES,
    TrafficRecorder,
    percentile,
)

T0 = 1_800_000_000.0  # a minute boundary (divisible by 60)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def exchange(
    at: float,
    *,
    provider: str | None = "alpha",
    model: str | None = "m1",
    duration: float = 0.1,
    status: int = 200,
    tokens: tuple[int, int] = (10, 5),
    cost: float | None = 0.001,
    error_type: str | None = None,
) -> Exchange:
    ex = Exchange(request_id="r", endpoint="messages", started_at=at - duration)
    ex.provider, ex.model, ex.status, ex.duration_s = provider, model, status, duration
    ex.usage = Usage(input_tokens=tokens[0], output_tokens=tokens[1])
    ex.cost_usd, ex.error_type = cost, error_type
    return ex


def recorder(now: float = T0) -> tuple[TrafficRecorder, Clock]:
    clock = Clock(now)
    return TrafficRecorder(clock), clock


def test_sums_per_series_and_window() -> None:
    traffic, clock = recorder(T0 - 3600)  # old enough that the hour's rate spans the whole hour
    clock.now = T0 + 30
    for _ in range(3):
        traffic.on_exchange(exchange(T0 + 10))
    traffic.on_exchange(exchange(T0 + 20, model="m2", status=502, error_type="api_error", cost=None))
    traffic.on_exchange(exchange(T0 + 25, provider="beta", model="x"))
    hour = traffic.hour()
    assert (hour.requests, hour.errors) == (5, 1)
    assert (hour.input_tokens, hour.output_tokens) == (50, 25)
    assert hour.cost_usd == pytest.approx(0.004)
    assert hour.error_rate == pytest.approx(0.2)
    # 59 whole minutes and the 30 s of this one.
    assert hour.span_s == pytest.approx(59 * 60 + 30)
    assert traffic.hour(("alpha", "")).requests == 4
    assert traffic.hour(("alpha", "m1")).requests == 3
    assert traffic.hour(("alpha", "m2")).errors == 1
    assert traffic.hour(("beta", "x")).requests == 1
    assert traffic.hour(("gamma", "")).requests == 0
    minute = traffic.minute()
    assert minute.requests == 5
    assert minute.requests_per_s == pytest.approx(5 / 60)
    assert minute.tokens_per_s == pytest.approx(75 / 60)
    assert set(traffic.keys()) == {
        ALL,
        ("alpha", ""),
        ("alpha", "m1"),
        ("alpha", "m2"),
        ("beta", ""),
        ("beta", "x"),
    }


def test_a_young_recorder_rates_over_its_own_life() -> None:
    traffic, clock = recorder(T0)
    clock.now = T0 + 10
    for _ in range(20):
        traffic.on_exchange(exchange(T0 + 5))
    assert traffic.hour().span_s == pytest.approx(10)
    assert traffic.hour().requests_per_s == pytest.approx(2.0)


def test_requests_leave_the_windows_as_they_age() -> None:
    traffic, clock = recorder(T0)
    traffic.on_exchange(exchange(T0))
    clock.now = T0 + 59
    assert traffic.minute().requests == 1
    clock.now = T0 + 60
    assert traffic.minute().requests == 0
    assert traffic.hour().requests == 1
    clock.now = T0 + 59 * 60 + 59
    assert traffic.hour().requests == 1
    clock.now = T0 + 3600
    assert traffic.hour().requests == 0
    # A slot reused after an hour starts from zero, not from what the old minute held.
    traffic.on_exchange(exchange(T0 + 3600))
    assert traffic.hour().requests == 1
    assert traffic.minute().requests == 1


def test_requests_without_a_provider_count_in_the_totals_only() -> None:
    traffic, _ = recorder(T0)
    traffic.on_exchange(exchange(T0, provider=None, model=None, status=401))
    assert traffic.hour().requests == 1
    assert traffic.hour().errors == 1
    assert traffic.keys() == [ALL]


def test_a_failed_stream_is_an_error() -> None:
    traffic, _ = recorder(T0)
    traffic.on_exchange(exchange(T0, status=200, error_type="overloaded_error"))
    assert traffic.minute().errors == 1


def test_points_one_per_minute_oldest_first() -> None:
    traffic, clock = recorder(T0)
    clock.now = T0 + 3 * 60 + 5
    traffic.on_exchange(exchange(T0 + 30, duration=0.2))
    traffic.on_exchange(exchange(T0 + 3 * 60 + 1, duration=2.0))
    traffic.on_exchange(exchange(T0 + 3 * 60 + 2, duration=2.0, status=500))
    points = traffic.points()
    assert len(points) == 60
    assert points[-1].start == T0 + 3 * 60
    assert [p.start for p in points] == sorted(p.start for p in points)
    assert (points[-1].requests, points[-1].errors, points[-1].tokens) == (2, 1, 30)
    assert points[-4].requests == 1
    assert points[-4].p95_s == pytest.approx(0.2, rel=0.6)
    assert points[-2].requests == 0
    assert points[-2].p95_s is None


@pytest.mark.parametrize("seconds", [0.003, 0.042, 0.25, 1.7, 33.0, 400.0])
def test_percentiles_within_one_bin(seconds: float) -> None:
    traffic, _ = recorder(T0)
    for _ in range(50):
        traffic.on_exchange(exchange(T0, duration=seconds))
    minute = traffic.minute()
    assert minute.p50_s is not None
    assert minute.p95_s is not None
    ratio = LATENCY_BOUNDS_S[1] / LATENCY_BOUNDS_S[0]
    assert seconds / ratio <= minute.p50_s <= seconds * ratio
    assert minute.p50_s <= minute.p95_s <= seconds * ratio


def test_p50_and_p95_of_a_spread() -> None:
    traffic, _ = recorder(T0)
    # 90 fast requests, 10 slow ones: p50 is fast, p95 is slow.
    for _ in range(90):
        traffic.on_exchange(exchange(T0, duration=0.05))
    for _ in range(10):
        traffic.on_exchange(exchange(T0, duration=3.0))
    minute = traffic.minute()
    assert minute.p50_s == pytest.approx(0.05, rel=0.6)
    assert minute.p95_s == pytest.approx(3.0, rel=0.6)


def test_percentile_edges() -> None:
    traffic, _ = recorder(T0)
    traffic.on_exchange(exchange(T0, duration=0.0004))
    p95 = traffic.minute().p95_s
    assert p95 is not None
    assert p95 < LATENCY_BOUNDS_S[0]
    bins = [0.0] * (len(LATENCY_BOUNDS_S) + 1)
    assert percentile(bins, 0.5) is None
    bins[-1] = 3  # only requests of 1,000 s and over
    assert percentile(bins, 0.95) == LATENCY_BOUNDS_S[-1]


def test_empty_recorder() -> None:
    traffic, _ = recorder(T0)
    hour = traffic.hour()
    assert (hour.requests, hour.p50_s, hour.p95_s, hour.error_rate) == (0, None, None, 0.0)
    assert all(p.requests == 0 for p in traffic.points())


def test_series_are_bounded() -> None:
    traffic, _ = recorder(T0)
    for i in range(MAX_SERIES * 2):
        traffic.on_exchange(exchange(T0, provider="alpha", model=f"model-{i}"))
    assert len(traffic.keys()) == MAX_SERIES
    # Past the bound, requests still count in the totals and their provider.
    assert traffic.hour().requests == MAX_SERIES * 2
    assert traffic.hour(("alpha", "")).requests == MAX_SERIES * 2


def _allocated(traffic: TrafficRecorder) -> int:
    rings = [ring for s in traffic._series.values() for ring in (s.seconds, s.minutes)]
    return sum(sys.getsizeof(ring.values) + sys.getsizeof(ring.ids) for ring in rings)


def test_memory_does_not_grow_with_traffic() -> None:
    traffic, clock = recorder(T0)
    traffic.on_exchange(exchange(T0))
    size = sum(
        sys.getsizeof(ring.values) for s in traffic._series.values() for ring in (s.seconds, s.minutes)
    )
    for i in range(20_000):
        clock.now = T0 + i * 0.5
        traffic.on_exchange(exchange(clock.now, duration=(i % 100) / 10))
    after = sum(
        sys.getsizeof(ring.values) for s in traffic._series.values() for ring in (s.seconds, s.minutes)
    )
    assert after == size
    # The last hour's, at two a second: 59 whole minutes and the current one so far.
    hour = traffic.hour()
    assert hour.requests == pytest.approx(hour.span_s * 2, abs=1)


def test_on_exchange_is_cheap() -> None:
    traffic, _ = recorder(T0)
    exchanges = [exchange(T0 + i * 0.01, model=f"m{i % 4}") for i in range(20_000)]
    began = time.perf_counter()
    for item in exchanges:
        traffic.on_exchange(item)
    per_call_us = (time.perf_counter() - began) / len(exchanges) * 1e6
    # About 5 us on a shared CI machine; the bound only catches an accidental O(n).
    assert per_call_us < 100, per_call_us
