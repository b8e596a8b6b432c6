from __future__ import annotations

from resilience_support import FakeClock

from ccrouter.config import BreakerConfig
from ccrouter.resilience.breaker import CircuitBreaker

CONFIG = BreakerConfig(
    consecutive_failures=3, min_calls=6, failure_rate=0.5, slow_call_s=5.0, open_s=10.0, success_threshold=2
)


def test_opens_after_consecutive_failures(clock: FakeClock) -> None:
    breaker = CircuitBreaker(CONFIG, clock)
    for _ in range(2):
        breaker.record(failed=True, duration_s=0.1)
    assert breaker.state == "closed"
    breaker.record(failed=True, duration_s=0.1)
    assert breaker.state == "open"
    assert breaker.reason == "3 consecutive failures"
    assert not breaker.allow()
    assert breaker.retry_in() == 10.0


def test_half_open_probe_then_close(clock: FakeClock) -> None:
    breaker = CircuitBreaker(CONFIG, clock)
    for _ in range(3):
        breaker.record(failed=True, duration_s=0.1)
    clock.advance(10.0)
    assert breaker.state == "half_open"
    assert breaker.allow()
    # One probe slot: the next caller is refused until the probe reports.
    assert not breaker.allow()
    breaker.record(failed=False, duration_s=0.1)
    assert breaker.state == "half_open"
    assert breaker.allow()
    breaker.record(failed=False, duration_s=0.1)
    assert breaker.state == "closed"
    assert breaker.allow()


def test_failed_probe_reopens(clock: FakeClock) -> None:
    breaker = CircuitBreaker(CONFIG, clock)
    for _ in range(3):
        breaker.record(failed=True, duration_s=0.1)
    clock.advance(10.0)
    assert breaker.allow()
    breaker.record(failed=True, duration_s=0.1)
    assert breaker.state == "open"
    assert breaker.reason == "a half-open probe failed"


def test_release_returns_the_probe_slot(clock: FakeClock) -> None:
    breaker = CircuitBreaker(CONFIG, clock)
    for _ in range(3):
        breaker.record(failed=True, duration_s=0.1)
    clock.advance(10.0)
    assert breaker.allow()
    breaker.release()
    assert breaker.allow()


def test_failure_rate_over_window(clock: FakeClock) -> None:
    config = CONFIG.model_copy(update={"consecutive_failures": 100})
    breaker = CircuitBreaker(config, clock)
    for failed in (True, False, True, False, True):
        breaker.record(failed=failed, duration_s=0.1)
    assert breaker.state == "closed"
    breaker.record(failed=True, duration_s=0.1)
    assert breaker.state == "open"
    assert breaker.reason == "failure rate 67% over 6 calls"


def test_slow_calls_open_it(clock: FakeClock) -> None:
    config = CONFIG.model_copy(update={"slow_rate": 0.8})
    breaker = CircuitBreaker(config, clock)
    for _ in range(5):
        breaker.record(failed=False, duration_s=6.0)
    assert breaker.state == "closed"
    breaker.record(failed=False, duration_s=6.0)
    assert breaker.state == "open"
    assert breaker.reason.startswith("slow-call rate 100%")


def test_sick_target_trips_sooner(clock: FakeClock) -> None:
    config = CONFIG.model_copy(update={"consecutive_failures": 4})
    breaker = CircuitBreaker(config, clock)
    # Slow successes first: a third of the earlier calls already bad halves the threshold (4 -> 2).
    for _ in range(3):
        breaker.record(failed=False, duration_s=6.0)
    breaker.record(failed=True, duration_s=0.1)
    assert breaker.state == "closed"
    breaker.record(failed=True, duration_s=0.1)
    assert breaker.state == "open"


def test_old_calls_leave_the_window(clock: FakeClock) -> None:
    config = CONFIG.model_copy(update={"consecutive_failures": 100, "window_s": 30.0})
    breaker = CircuitBreaker(config, clock)
    for _ in range(5):
        breaker.record(failed=True, duration_s=0.1)
    clock.advance(31.0)
    breaker.record(failed=True, duration_s=0.1)
    assert breaker.state == "closed"
    assert breaker.failure_rate() == 1.0
