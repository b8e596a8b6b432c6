"""Per-target statistics kept by each instance: in-flight calls, EWMAs of latency, time to first token
and output speed, and outcome counts by error class over a window."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

from ccrouter.errors import (
    CCRouterError,
    UpstreamConnectionError,
    UpstreamOverloadedError,
    UpstreamRateLimitError,
    UpstreamTimeoutError,
)
from ccrouter.resilience.ratelimits import AnnouncedLimits

__all__ = ["TargetStats", "error_class"]

# Weight of the newest sample in the moving averages: ~the last ten calls dominate.
EWMA_ALPHA = 0.2
OUTCOME_WINDOW_S = 300.0


def error_class(exc: CCRouterError | None) -> str:
    """A short outcome class for counting: ok, rate_limit, overloaded, timeout, connection, 5xx, 4xx."""
    if exc is None:
        return "ok"
    if isinstance(exc, UpstreamRateLimitError):
        return "rate_limit"
    if isinstance(exc, UpstreamOverloadedError):
        return "overloaded"
    if isinstance(exc, UpstreamTimeoutError):
        return "timeout"
    if isinstance(exc, UpstreamConnectionError):
        return "connection"
    return "5xx" if exc.status >= 500 else "4xx"


def _ewma(current: float | None, sample: float) -> float:
    return sample if current is None else current + EWMA_ALPHA * (sample - current)


@dataclass(slots=True)
class TargetStats:
    in_flight: int = 0
    latency_s: float | None = None
    ttft_s: float | None = None
    output_tps: float | None = None
    outcomes: deque[tuple[float, str]] = field(default_factory=deque)
    announced: AnnouncedLimits | None = None
    # 429s in a row without an announced reset: the backoff exponent.
    rate_limited_in_a_row: int = 0
    tally: Counter[str] = field(default_factory=Counter)

    def record(self, now: float, outcome: str, duration_s: float | None) -> None:
        self.outcomes.append((now, outcome))
        self.tally[outcome] += 1
        while self.outcomes and self.outcomes[0][0] < now - OUTCOME_WINDOW_S:
            self.tally[self.outcomes.popleft()[1]] -= 1
        if outcome == "ok" and duration_s is not None:
            self.latency_s = _ewma(self.latency_s, duration_s)

    def record_speed(self, ttft_s: float | None, output_tokens: int, duration_s: float) -> None:
        if ttft_s is not None:
            self.ttft_s = _ewma(self.ttft_s, ttft_s)
        generating = duration_s - (ttft_s or 0.0)
        if output_tokens > 0 and generating > 0:
            self.output_tps = _ewma(self.output_tps, output_tokens / generating)

    def counts(self) -> Counter[str]:
        return +self.tally

    def success_rate(self) -> float | None:
        """Share of recent calls that succeeded (rate limits excluded: they say nothing of health)."""
        t = self.tally
        relevant = len(self.outcomes) - t["rate_limit"] - t["4xx"]
        return t["ok"] / relevant if relevant else None
