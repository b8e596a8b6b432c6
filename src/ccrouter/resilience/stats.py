"""Per-target statistics kept by each instance: in-flight calls, EWMAs of latency, time to first token
and output speed, and outcome counts by error class over a window."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ccrouter.errors import (
    CCRouterError,
    UpstreamConnectionError,
    UpstreamOverloadedError,
    UpstreamRateLimitError,
    UpstreamTimeoutError,
)
from ccrouter.resilience.buckets import BucketRing
from ccrouter.resilience.ratelimits import AnnouncedLimits

__all__ = ["TargetStats", "error_class"]

# Weight of the newest sample in the moving averages: ~the last ten calls dominate.
EWMA_ALPHA = 0.2
OUTCOME_WINDOW_S = 300.0
# Latency averages count this long after their last sample, like the outcomes; after that the target's
# latency is unknown again (and the next sample starts a fresh average).
LATENCY_TTL_S = OUTCOME_WINDOW_S
# Outcomes are counted in 5 s buckets: a call may still count up to 305 s after it ended.
OUTCOME_BUCKET_S = 5.0
OUTCOMES = ("ok", "rate_limit", "overloaded", "timeout", "connection", "5xx", "4xx")
_OUTCOME_FIELD = {name: i for i, name in enumerate(OUTCOMES)}
_OK, _RATE_LIMIT, _CLIENT_ERROR = _OUTCOME_FIELD["ok"], _OUTCOME_FIELD["rate_limit"], _OUTCOME_FIELD["4xx"]


def error_class(exc: CCRouterError | None) -> str:
    """A short outcome class for counting, one of ``OUTCOMES``."""
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


def _outcome_ring() -> BucketRing:
    return BucketRing(OUTCOME_WINDOW_S, OUTCOME_BUCKET_S, len(OUTCOMES))


def _ewma(current: float | None, sample: float) -> float:
    return sample if current is None else current + EWMA_ALPHA * (sample - current)


@dataclass(slots=True)
class TargetStats:
    in_flight: int = 0
    latency_s: float | None = None
    ttft_s: float | None = None
    output_tps: float | None = None
    # Outcome counts of the last ``OUTCOME_WINDOW_S``, one field per ``OUTCOMES`` entry.
    outcomes: BucketRing = field(default_factory=_outcome_ring)
    announced: AnnouncedLimits | None = None
    # 429s in a row without an announced reset: the backoff exponent.
    rate_limited_in_a_row: int = 0
    # When the latest latency / time-to-first-token sample came (clock seconds; 0: never).
    sampled_at: float = 0.0

    def record(self, now: float, outcome: str, duration_s: float | None) -> None:
        """Count one finished call; ``outcome`` is one of ``OUTCOMES``."""
        self.outcomes.add(now, _OUTCOME_FIELD[outcome])
        if outcome == "ok" and duration_s is not None:
            # After a silence the old average says little: start again rather than blend.
            current = self.latency_s if now - self.sampled_at <= LATENCY_TTL_S else None
            self.latency_s = _ewma(current, duration_s)
            self.sampled_at = now

    def recent(self, now: float) -> tuple[float | None, float | None]:
        """(latency, time to first token) averages when sampled within ``LATENCY_TTL_S``, else
        (None, None): a target traffic has left is then "unknown", which the latency factor tries
        again, so one slow call cannot keep it out for good."""
        if self.sampled_at <= 0 or now - self.sampled_at > LATENCY_TTL_S:
            return None, None
        return self.latency_s, self.ttft_s

    def record_speed(self, ttft_s: float | None, output_tokens: int, duration_s: float) -> None:
        if ttft_s is not None:
            self.ttft_s = _ewma(self.ttft_s, ttft_s)
        generating = duration_s - (ttft_s or 0.0)
        if output_tokens > 0 and generating > 0:
            self.output_tps = _ewma(self.output_tps, output_tokens / generating)

    def counts(self) -> Counter[str]:
        """Calls per outcome class in the window (as of the last ``record``)."""
        # Counts are sums of 1.0: exact in a float, so int() loses nothing.
        totals = self.outcomes.totals
        return Counter({name: int(totals[i]) for i, name in enumerate(OUTCOMES) if totals[i]})

    def success_rate(self) -> float | None:
        """Share of recent calls that succeeded (rate limits excluded: they say nothing of health)."""
        t = self.outcomes.totals
        relevant = sum(t) - t[_RATE_LIMIT] - t[_CLIENT_ERROR]
        return t[_OK] / relevant if relevant else None
