"""The per-address failure throttle and the once-a-minute log gate: their arithmetic and their bounded
memory against an attacker rotating addresses (issue 11, Security 4)."""

from __future__ import annotations

import pytest

from ccrouter.api.throttle import FailureThrottle, OncePer, address_key


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_a_token_every_sixty_over_per_minute_seconds() -> None:
    clock = _Clock()
    throttle = FailureThrottle(3, 6, clock=clock)
    for _ in range(3):
        assert throttle.retry_after("10.0.0.1") is None
        throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == pytest.approx(10.0)
    assert throttle.retry_after("10.0.0.2") is None  # per address
    clock.now += 4
    assert throttle.retry_after("10.0.0.1") == pytest.approx(6.0)
    clock.now += 6.01
    assert throttle.retry_after("10.0.0.1") is None
    clock.now += 3600
    for _ in range(3):  # whole again after a quiet spell, never more than the burst
        assert throttle.retry_after("10.0.0.1") is None
        throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") is not None


def test_the_tables_stay_bounded_under_rotating_addresses() -> None:
    throttle = FailureThrottle(1, 1, max_addresses=100)
    once = OncePer(60, max_keys=100)
    for i in range(10_000):
        address = f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"
        throttle.failed(address)
        assert once(address)
    assert len(throttle) == 100
    assert len(once) == 100
    # The most recent failures are the ones kept.
    assert throttle.retry_after("10.0.39.15") is not None


def test_ipv6_addresses_count_per_64_block() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:ffff:1:2:3")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("192.0.2.7") == "192.0.2.7"
    assert address_key(None) == "unknown"


def test_once_per_interval_per_key() -> None:
    clock = _Clock()
    once = OncePer(60, clock=clock)
    assert once("a")
    assert not once("a")
    assert once("b")
    clock.now += 61
    assert once("a")
