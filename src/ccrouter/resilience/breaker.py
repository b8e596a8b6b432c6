"""Circuit breaker per provider and model: closed -> open -> half-open -> closed.

Our own rather than a library: pybreaker is built around synchronous calls and a global listener
registry, aiobreaker is unmaintained; neither counts slow calls, exposes a probe budget, takes an
injectable clock or lowers its threshold from recent health, and the whole policy is ~100 lines.
The breaker only decides; dispatch tells it what happened (``record``), so it holds no I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ccrouter.config import BreakerConfig
from ccrouter.status import BreakerState

__all__ = ["CircuitBreaker"]


@dataclass(slots=True)
class _Call:
    at: float
    failed: bool
    slow: bool


class CircuitBreaker:
    """One breaker. ``allow()`` before a call (False: skip the candidate), ``record()`` after it."""

    def __init__(self, config: BreakerConfig, clock: Callable[[], float]) -> None:
        self._config = config
        self._clock = clock
        self._state: BreakerState = "closed"
        self._opened_at = 0.0
        self._consecutive = 0
        self._calls: deque[_Call] = deque()
        self._failures = 0
        self._slow = 0
        self._bad = 0
        self._probes_out = 0
        self._probe_successes = 0
        self.reason = ""

    @property
    def state(self) -> BreakerState:
        if self._state == "open" and self._clock() - self._opened_at >= self._config.open_s:
            self._state = "half_open"
            self._probes_out = 0
            self._probe_successes = 0
        return self._state

    def retry_in(self) -> float:
        """Seconds until an open breaker lets a probe through (0 otherwise)."""
        if self.state != "open":
            return 0.0
        return max(0.0, self._opened_at + self._config.open_s - self._clock())

    def allow(self) -> bool:
        """Whether a call may go now; in half-open, takes one of the probe slots."""
        state = self.state
        if state == "closed":
            return True
        if state == "open" or self._probes_out >= self._config.half_open_probes:
            return False
        self._probes_out += 1
        return True

    def release(self) -> None:
        """A call allowed by ``allow()`` was not made after all (another gate refused it)."""
        if self._state == "half_open" and self._probes_out > 0:
            self._probes_out -= 1

    def record(self, *, failed: bool, duration_s: float) -> None:
        config = self._config
        now = self._clock()
        slow = duration_s >= config.slow_call_s
        if self.state == "half_open":
            self._probes_out = max(0, self._probes_out - 1)
            if failed:
                self._open(now, "a half-open probe failed")
            else:
                self._probe_successes += 1
                if self._probe_successes >= config.success_threshold:
                    self._close()
            return
        self._calls.append(_Call(now, failed, slow))
        self._failures += failed
        self._slow += slow
        self._bad += failed or slow
        while self._calls and self._calls[0].at < now - config.window_s:
            old = self._calls.popleft()
            self._failures -= old.failed
            self._slow -= old.slow
            self._bad -= old.failed or old.slow
        self._consecutive = self._consecutive + 1 if failed else 0
        if self._state == "closed":
            self._check(now)

    def failure_rate(self) -> float:
        calls = self._calls
        return self._failures / len(calls) if calls else 0.0

    def _check(self, now: float) -> None:
        config = self._config
        threshold = config.consecutive_failures
        calls = len(self._calls)
        failures = self._failures
        slow = self._slow
        # Already sick before this streak (a third of the earlier calls failed or were slow): trip sooner.
        streak = min(self._consecutive, calls)
        earlier = calls - streak
        if earlier >= 3 and (self._bad - streak) / earlier >= 1 / 3:
            threshold = max(2, threshold // 2)
        if self._consecutive >= threshold:
            self._open(now, f"{self._consecutive} consecutive failures")
        elif calls >= config.min_calls and failures / calls >= config.failure_rate:
            self._open(now, f"failure rate {failures / calls:.0%} over {calls} calls")
        elif calls >= config.min_calls and slow / calls >= config.slow_rate:
            self._open(now, f"slow-call rate {slow / calls:.0%} over {calls} calls")

    def _open(self, now: float, reason: str) -> None:
        self._state = "open"
        self._opened_at = now
        self._probes_out = 0
        self._probe_successes = 0
        self.reason = reason

    def _close(self) -> None:
        self._state = "closed"
        self._consecutive = 0
        self._calls.clear()
        self._failures = self._slow = self._bad = 0
        self.reason = ""
