"""Circuit breaker per provider and model: closed -> open -> half-open -> closed.

Our own rather than a library: pybreaker is built around synchronous calls and a global listener
registry, aiobreaker is unmaintained; neither counts slow calls, exposes a probe budget, takes an
injectable clock or lowers its threshold from recent health, and the whole policy is ~100 lines.
The breaker only decides; dispatch tells it what happened (``record``), so it holds no I/O. With
shared state, another instance's transition arrives through ``apply`` (``ccrouter.resilience.shared``).
"""

from __future__ import annotations

from collections.abc import Callable

from ccrouter.config import BreakerConfig
from ccrouter.resilience.buckets import BucketRing
from ccrouter.status import BreakerState

__all__ = ["CircuitBreaker"]

# Fields of the call window: calls, failed calls, slow calls, calls failed or slow.
_CALLS, _FAILED, _SLOW, _BAD = range(4)
# The window is counted in 60 buckets (1 s for the default 60 s): a call counts up to window_s/60 longer.
_BUCKETS_PER_WINDOW = 60


class CircuitBreaker:
    """One breaker. ``allow()`` before a call (False: skip the candidate), ``record()`` after it."""

    def __init__(self, config: BreakerConfig, clock: Callable[[], float]) -> None:
        self._config = config
        self._clock = clock
        self._state: BreakerState = "closed"
        self._opened_at = 0.0
        self._consecutive = 0
        # Counts only, never one entry per call; the consecutive-failure streak is counted exactly.
        self._calls = BucketRing(config.window_s, config.window_s / _BUCKETS_PER_WINDOW, 4)
        self._probes_out = 0
        self._probe_successes = 0
        self.reason = ""
        # When it last opened or closed (clock seconds; 0: never): the newer transition wins.
        self.changed_at = 0.0

    @property
    def opened_at(self) -> float:
        return self._opened_at

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
        calls = self._calls
        bucket = calls.bucket(now)
        calls.bump(bucket, _CALLS)
        if failed:
            calls.bump(bucket, _FAILED)
        if slow:
            calls.bump(bucket, _SLOW)
        if failed or slow:
            calls.bump(bucket, _BAD)
        self._consecutive = self._consecutive + 1 if failed else 0
        if self._state == "closed":
            self._check(now)

    def failure_rate(self) -> float:
        """Failed share of the calls in the window (as of the last ``record``)."""
        totals = self._calls.totals
        return totals[_FAILED] / totals[_CALLS] if totals[_CALLS] else 0.0

    def _check(self, now: float) -> None:
        config = self._config
        threshold = config.consecutive_failures
        # Counts are sums of 1.0, exact in a float.
        totals = self._calls.totals
        calls, failures, slow = int(totals[_CALLS]), int(totals[_FAILED]), int(totals[_SLOW])
        # Already sick before this streak (a third of the earlier calls failed or were slow): trip sooner.
        streak = min(self._consecutive, calls)
        earlier = calls - streak
        if earlier >= 3 and (int(totals[_BAD]) - streak) / earlier >= 1 / 3:
            threshold = max(2, threshold // 2)
        if self._consecutive >= threshold:
            self._open(now, f"{self._consecutive} consecutive failures")
        elif calls >= config.min_calls and failures / calls >= config.failure_rate:
            self._open(now, f"failure rate {failures / calls:.0%} over {calls} calls")
        elif calls >= config.min_calls and slow / calls >= config.slow_rate:
            self._open(now, f"slow-call rate {slow / calls:.0%} over {calls} calls")

    def apply(self, state: BreakerState, at: float, reason: str) -> bool:
        """Take another instance's transition at ``at`` (open, or closed) when it is newer than this
        breaker's own last one; returns whether it was taken."""
        if at <= self.changed_at:
            return False
        if state == "open":
            self._open(at, reason)
        else:
            self._close(at)
        return True

    def _open(self, now: float, reason: str) -> None:
        self._state = "open"
        self._opened_at = now
        self._probes_out = 0
        self._probe_successes = 0
        self.reason = reason
        self.changed_at = now

    def _close(self, now: float | None = None) -> None:
        self._state = "closed"
        self._consecutive = 0
        self._calls.clear()
        self.reason = ""
        self.changed_at = self._clock() if now is None else now
