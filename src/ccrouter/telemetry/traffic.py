"""The dashboard's live traffic: an ``Observer`` counting the finished requests of the last hour.

``TrafficRecorder`` keeps, for all traffic, each provider and each (provider, model), two rings of
fixed time buckets: 60 one-second buckets (the last minute) and 60 one-minute buckets (the last hour,
and the charts' points). A bucket holds requests, errors, input and output tokens, cost and a latency
histogram (5 log-spaced bins per decade from 1 ms to 1,000 s), so memory is set by the number of
series, never by traffic, and ``on_exchange`` is a few array additions (O(1)). Percentiles come from
the histogram, interpolated within the bin that holds them (within one bin's width, 58%, of the
exact value; usually far closer).

Why not 3,600 one-second buckets: the overview sums the hour every second or two for every series;
60 minute buckets make that 60 times cheaper, and the hour's charts have one point a minute anyway.

Counted per exchange the observers see (every client request an endpoint served, and each call a
request made for itself, such as an image agent's): an error is a status of 400 or more, or a stream
that failed after it started (``error_type`` set), as the ledger counts them. The recorder belongs to
no configuration: a reload carries it over (``ccrouter.services``).
"""

from __future__ import annotations

import bisect
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass

from ccrouter.exchange import Exchange

__all__ = ["LATENCY_BOUNDS_S", "MAX_SERIES", "Point", "Totals", "TrafficRecorder", "percentile"]

Clock = Callable[[], float]

SLOTS = 60  # buckets per ring
# Fields of a bucket: requests, errors, input tokens, output tokens, cost (USD), then the histogram.
_REQ, _ERR, _IN, _OUT, _COST, _HIST = 0, 1, 2, 3, 4, 5
# Latency bin edges: 1 ms x 10^(i/5), i = 0..30 (1 ms to 1,000 s); bin 0 is below 1 ms, the last
# bin is 1,000 s and over.
LATENCY_BOUNDS_S: tuple[float, ...] = tuple(0.001 * 10 ** (i / 5) for i in range(31))
_BINS = len(LATENCY_BOUNDS_S) + 1
_FIELDS = _HIST + _BINS
# Series beyond these (an unbounded set of model names) count in the totals and their provider only.
MAX_SERIES = 256

_ZEROS = array("d", [0.0]) * _FIELDS

Key = tuple[str, str]  # ("", ""): all traffic; (provider, ""): a provider; (provider, model)
ALL: Key = ("", "")


class _Ring:
    """``SLOTS`` buckets of ``width`` seconds; each slot remembers which bucket number it holds."""

    __slots__ = ("ids", "values", "width")

    def __init__(self, width: int) -> None:
        self.width = width
        self.ids = array("q", [-1]) * SLOTS
        self.values = array("d", [0.0]) * (SLOTS * _FIELDS)

    def fields(self, number: int) -> array[float] | None:
        """Bucket ``number``'s fields (None when the ring no longer, or never, held it)."""
        slot = number % SLOTS
        if self.ids[slot] != number:
            return None
        base = slot * _FIELDS
        return self.values[base : base + _FIELDS]


class _Series:
    __slots__ = ("minutes", "seconds")

    def __init__(self) -> None:
        self.seconds = _Ring(1)
        self.minutes = _Ring(60)


@dataclass(frozen=True, slots=True)
class Totals:
    """What one series saw over ``span_s`` seconds."""

    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    span_s: float
    p50_s: float | None
    p95_s: float | None

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.span_s if self.span_s > 0 else 0.0

    @property
    def tokens_per_s(self) -> float:
        return (self.input_tokens + self.output_tokens) / self.span_s if self.span_s > 0 else 0.0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class Point:
    """One minute of one series: ``start`` is the minute's first second (unix)."""

    start: int
    requests: int
    errors: int
    tokens: int
    p95_s: float | None


def percentile(histogram: array[float] | list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a latency histogram of ``LATENCY_BOUNDS_S`` bins, interpolated
    log-linearly within its bin; None when the histogram is empty."""
    count = sum(histogram)
    if count <= 0:
        return None
    rank = max(q * count, 1e-9)
    seen = 0.0
    for i, in_bin in enumerate(histogram):
        if in_bin <= 0:
            continue
        if seen + in_bin >= rank:
            share = (rank - seen) / in_bin
            if i == 0:
                return LATENCY_BOUNDS_S[0] * share
            low = LATENCY_BOUNDS_S[i - 1]
            if i == _BINS - 1:
                return low
            high = LATENCY_BOUNDS_S[i]
            return float(low * (high / low) ** share)
        seen += in_bin
    return LATENCY_BOUNDS_S[-1]


class TrafficRecorder:
    """The ``Observer`` behind the dashboard's Overview (``GET /api/overview``, ``/api/live``)."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._series: dict[Key, _Series] = {ALL: _Series()}
        self.started_at = clock()

    def on_exchange(self, exchange: Exchange) -> None:
        duration = exchange.duration_s or 0.0
        at = exchange.started_at + duration
        second = int(at)
        minute = second // 60
        errors = 1.0 if exchange.status >= 400 or exchange.error_type is not None else 0.0
        usage = exchange.usage
        tokens_in = float(usage.input_tokens) if usage is not None else 0.0
        tokens_out = float(usage.output_tokens) if usage is not None else 0.0
        cost = exchange.cost_usd or 0.0
        latency_bin = _HIST + bisect.bisect_right(LATENCY_BOUNDS_S, duration)
        series = self._series
        targets: list[_Series | None] = [series[ALL]]
        provider = exchange.provider
        if provider is not None:
            targets.append(series.get((provider, "")) or self._new((provider, "")))
            if exchange.model is not None:
                targets.append(
                    series.get((provider, exchange.model)) or self._new((provider, exchange.model))
                )
        for item in targets:
            if item is None:
                continue
            for ring, number in ((item.seconds, second), (item.minutes, minute)):
                slot = number % SLOTS
                base = slot * _FIELDS
                values = ring.values
                if ring.ids[slot] != number:
                    ring.ids[slot] = number
                    values[base : base + _FIELDS] = _ZEROS
                values[base + _REQ] += 1.0
                values[base + _ERR] += errors
                values[base + _IN] += tokens_in
                values[base + _OUT] += tokens_out
                values[base + _COST] += cost
                values[base + latency_bin] += 1.0

    def _new(self, key: Key) -> _Series | None:
        if len(self._series) >= MAX_SERIES:
            return None
        made = self._series[key] = _Series()
        return made

    # ------------------------------------------------------------------ reading

    def keys(self) -> list[Key]:
        """Every series seen since the start (at most ``MAX_SERIES``), all traffic first."""
        return list(self._series)

    def minute(self, key: Key = ALL, now: float | None = None) -> Totals:
        """The last 60 seconds of ``key``'s series (the current second included)."""
        second = int(self._clock() if now is None else now)
        ring = self._ring(key, "seconds")
        return _totals(ring, second - SLOTS + 1, float(SLOTS))

    def hour(self, key: Key = ALL, now: float | None = None) -> Totals:
        """The last 60 minutes of ``key``'s series: 59 whole minutes and the current one so far."""
        at = self._clock() if now is None else now
        minute = int(at) // 60
        ring = self._ring(key, "minutes")
        first = minute - SLOTS + 1
        # The span the buckets cover, but never before the recorder existed (a young gateway's rate).
        span = at - max(first * 60, self.started_at)
        return _totals(ring, first, max(1.0, span))

    def points(self, key: Key = ALL, now: float | None = None) -> list[Point]:
        """One point per minute of the last hour, oldest first (empty minutes as zeros)."""
        minute = int(self._clock() if now is None else now) // 60
        ring = self._ring(key, "minutes")
        out = []
        for number in range(minute - SLOTS + 1, minute + 1):
            fields = ring.fields(number) if ring is not None else None
            if fields is None:
                out.append(Point(number * 60, 0, 0, 0, None))
                continue
            out.append(
                Point(
                    number * 60,
                    int(fields[_REQ]),
                    int(fields[_ERR]),
                    int(fields[_IN] + fields[_OUT]),
                    percentile(fields[_HIST:], 0.95),
                )
            )
        return out

    def _ring(self, key: Key, which: str) -> _Ring | None:
        found = self._series.get(key)
        if found is None:
            return None
        ring: _Ring = getattr(found, which)
        return ring


def _totals(ring: _Ring | None, first: int, span: float) -> Totals:
    """The sums of ``ring``'s buckets from number ``first`` on. Older buckets are emptied first, so
    that each field is one strided sum over the ring (in C: no Python loop over the fields)."""
    if ring is None:
        sums = [0.0] * _FIELDS
    else:
        ids, values = ring.ids, ring.values
        for slot in range(SLOTS):
            number = ids[slot]
            if 0 <= number < first:
                ids[slot] = -1
                values[slot * _FIELDS : (slot + 1) * _FIELDS] = _ZEROS
        sums = [sum(values[i::_FIELDS]) for i in range(_FIELDS)]
    histogram = sums[_HIST:]
    return Totals(
        requests=int(sums[_REQ]),
        errors=int(sums[_ERR]),
        input_tokens=int(sums[_IN]),
        output_tokens=int(sums[_OUT]),
        cost_usd=sums[_COST],
        span_s=span,
        p50_s=percentile(histogram, 0.5),
        p95_s=percentile(histogram, 0.95),
    )
