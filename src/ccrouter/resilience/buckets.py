"""Sums over a sliding time window kept in fixed time buckets: memory is set by the window and the
bucket width, never by traffic. Breaker, target statistics, rate-limit windows and the alert window
all count with it instead of keeping one entry per request.
"""

from __future__ import annotations

import math
from array import array

__all__ = ["BucketRing"]


class BucketRing:
    """``fields`` running sums over the last ``window_s``, in buckets ``width_s`` wide.

    Buckets live in a ring of ``ceil(window_s / width_s) + 2`` preallocated slots; each slot also keeps
    the time of its newest event. A bucket leaves the window only once that newest event is at least
    ``window_s`` old, so a bucket partly out of the window still counts in full: the sums may include
    events up to ``window_s + width_s`` old, never miss one younger than ``window_s``. Rate limits read
    them, so they err on the side of counting too much (conservative), never too little.
    """

    __slots__ = (
        "_expires_at",
        "_fields",
        "_ids",
        "_last",
        "_newest",
        "_oldest",
        "_size",
        "_values",
        "_width",
        "_window",
        "totals",
    )

    def __init__(self, window_s: float, width_s: float, fields: int) -> None:
        self._window = window_s
        self._width = width_s
        self._fields = fields
        # Live buckets span at most ceil(window / width) + 1 bucket numbers; one more slot is slack for
        # float rounding in the bucket numbers.
        self._size = math.ceil(window_s / width_s) + 2
        self._ids = array("q", [-1]) * self._size  # bucket number held by each slot, -1: empty
        self._last = array("d", [0.0]) * self._size  # newest event time in each slot
        self._values = array("d", [0.0]) * (self._size * fields)
        self.totals = array("d", [0.0]) * fields  # sums over the live buckets
        self._oldest = -1  # bucket number of the oldest live bucket; -1: none
        self._newest = -1
        # When the oldest bucket leaves the window (may be early, never late): until then, no work.
        self._expires_at = math.inf

    @property
    def slots(self) -> int:
        """Bucket slots allocated (fixed at construction)."""
        return self._size

    @property
    def live(self) -> int:
        """Buckets currently holding counts."""
        return sum(1 for bucket in self._ids if bucket >= 0)

    def frees_in(self, now: float) -> float:
        """Seconds until the oldest live bucket leaves the window (0 when nothing is counted)."""
        self.expire(now)
        return 0.0 if self._expires_at == math.inf else max(0.0, self._expires_at - now)

    def add(self, now: float, field: int, amount: float = 1.0) -> None:
        """Add ``amount`` to ``field`` in the bucket of ``now``."""
        self._values[self.bucket(now) + field] += amount
        self.totals[field] += amount

    def bucket(self, now: float) -> int:
        """Expire old buckets, then return where ``now``'s bucket is, for ``bump``."""
        if now >= self._expires_at:
            self._expire(now)
        number = int(now // self._width)
        newest = self._newest
        if number <= newest:
            # The newest bucket, or the clock stepped back: count it there too (it leaves the window
            # last, so this is conservative).
            slot = newest % self._size
            if now > self._last[slot]:
                self._last[slot] = now
            return slot * self._fields
        slot = number % self._size
        if self._ids[slot] >= 0:
            self._evict(slot)  # unreachable by the size bound above; keeps the ring consistent
        self._ids[slot] = number
        self._last[slot] = now
        if newest < 0:
            self._oldest = number
            self._expires_at = now + self._window
        self._newest = number
        return slot * self._fields

    def bump(self, bucket: int, field: int, amount: float = 1.0) -> None:
        """Add ``amount`` to ``field`` in the bucket returned by ``bucket``."""
        self._values[bucket + field] += amount
        self.totals[field] += amount

    def expire(self, now: float) -> None:
        """Drop the buckets whose newest event is ``window_s`` old or older."""
        if now >= self._expires_at:
            self._expire(now)

    def clear(self) -> None:
        for slot, number in enumerate(self._ids):
            if number >= 0:
                self._evict(slot)
        self._empty()

    def _expire(self, now: float) -> None:
        window, ids, last, size = self._window, self._ids, self._last, self._size
        number = self._oldest
        while number <= self._newest:
            slot = number % size
            if ids[slot] == number:
                if last[slot] + window > now:
                    self._oldest = number
                    self._expires_at = last[slot] + window
                    return
                self._evict(slot)
            number += 1
        self._empty()

    def _empty(self) -> None:
        # Every bucket is gone: zero the totals, dropping any float residue of the subtractions.
        totals = self.totals
        for field in range(self._fields):
            totals[field] = 0.0
        self._oldest = self._newest = -1
        self._expires_at = math.inf

    def _evict(self, slot: int) -> None:
        fields = self._fields
        base = slot * fields
        values, totals = self._values, self.totals
        for field in range(fields):
            totals[field] -= values[base + field]
            values[base + field] = 0.0
        self._ids[slot] = -1
