"""Per-target statistics kept by each instance: in-flight calls, EWMAs of latency, time to first token
and output speed, and outcome counts by error class over a window.

With shared state (``ccrouter.resilience.shared``) each instance also publishes a ``snapshot`` of its
figures, and reads back ``MergedStats``: every instance's figures merged alike (``merge``), which the
routing and health views then read instead of the instance's own (``TargetStats.merged``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import astuple, dataclass, field
from typing import Any

from ccrouter.errors import (
    CCRouterError,
    UpstreamConnectionError,
    UpstreamOverloadedError,
    UpstreamRateLimitError,
    UpstreamTimeoutError,
)
from ccrouter.resilience.buckets import BucketRing
from ccrouter.resilience.ratelimits import AnnouncedLimits

__all__ = ["MergedStats", "TargetStats", "error_class", "merge", "snapshot"]

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


@dataclass(frozen=True, slots=True)
class MergedStats:
    """Every instance's figures for one target, merged (``merge``)."""

    latency_s: float | None
    ttft_s: float | None
    output_tps: float | None
    sampled_at: float
    # Outcome counts over the window, one per ``OUTCOMES`` entry, summed over the instances.
    totals: tuple[float, ...]
    announced: AnnouncedLimits | None
    announced_at: float


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
    # When ``announced`` was last set or cleared (clock seconds; 0: never).
    announced_at: float = 0.0
    # Shared state: every instance's figures, merged (None: this instance's own count alone).
    merged: MergedStats | None = None

    def set_announced(self, announced: AnnouncedLimits | None, now: float) -> None:
        self.announced = announced
        self.announced_at = now

    def current_announced(self) -> AnnouncedLimits | None:
        """The latest announced limits, whichever instance heard them."""
        merged = self.merged
        if merged is not None and merged.announced_at > self.announced_at:
            return merged.announced
        return self.announced

    def averages(self) -> tuple[float | None, float | None, float | None]:
        """(latency, time to first token, output tokens/s) moving averages, merged when shared."""
        merged = self.merged
        if merged is not None:
            return merged.latency_s, merged.ttft_s, merged.output_tps
        return self.latency_s, self.ttft_s, self.output_tps

    def _totals(self) -> Sequence[float]:
        merged = self.merged
        return merged.totals if merged is not None else self.outcomes.totals

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
        merged = self.merged
        if merged is not None:
            if merged.sampled_at <= 0 or now - merged.sampled_at > LATENCY_TTL_S:
                return None, None
            return merged.latency_s, merged.ttft_s
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
        totals = self._totals()
        return Counter({name: int(totals[i]) for i, name in enumerate(OUTCOMES) if totals[i]})

    def success_rate(self) -> float | None:
        """Share of recent calls that succeeded (rate limits excluded: they say nothing of health)."""
        t = self._totals()
        relevant = sum(t) - t[_RATE_LIMIT] - t[_CLIENT_ERROR]
        return t[_OK] / relevant if relevant else None


def snapshot(stats: TargetStats, now: float) -> list[Any] | None:
    """This instance's own figures for one target, as JSON-ready data (None: nothing to tell)."""
    stats.outcomes.expire(now)
    totals = [int(v) for v in stats.outcomes.totals]
    if not any(totals) and stats.announced_at <= 0 and stats.sampled_at <= 0:
        return None
    announced = list(astuple(stats.announced)) if stats.announced is not None else None
    return [
        stats.latency_s,
        stats.ttft_s,
        stats.output_tps,
        stats.sampled_at,
        totals,
        announced,
        stats.announced_at,
    ]


def _mean(pairs: list[tuple[float, float]]) -> float | None:
    weight = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / weight if weight else None


def merge(entries: Sequence[Sequence[Any]], now: float) -> MergedStats:
    """Merge instances' ``snapshot``s of one target, the same way on every instance (sorted first):
    outcomes summed; averages weighted by each instance's successful calls (at least 1), counting
    only those sampled within ``LATENCY_TTL_S``; the latest announced limits."""
    entries = sorted(entries, key=lambda e: (e[3], e[6]))
    lat: list[tuple[float, float]] = []
    ttft: list[tuple[float, float]] = []
    tps: list[tuple[float, float]] = []
    totals = [0.0] * len(OUTCOMES)
    sampled_at = 0.0
    announced: AnnouncedLimits | None = None
    announced_at = 0.0
    for latency_s, ttft_s, output_tps, sampled, counts, limits, limits_at in entries:
        for i, count in enumerate(counts[: len(OUTCOMES)]):
            totals[i] += count
        if sampled > 0 and now - sampled <= LATENCY_TTL_S:
            weight = max(1.0, float(counts[_OK]))
            sampled_at = max(sampled_at, sampled)
            for value, into in ((latency_s, lat), (ttft_s, ttft), (output_tps, tps)):
                if value is not None:
                    into.append((float(value), weight))
        if limits_at > announced_at:
            announced_at = limits_at
            announced = AnnouncedLimits(*limits) if limits is not None else None
    return MergedStats(
        _mean(lat), _mean(ttft), _mean(tps), sampled_at, tuple(totals), announced, announced_at
    )
