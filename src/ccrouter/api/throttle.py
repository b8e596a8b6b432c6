"""Failed authentication per client address: a token bucket each, in a bounded table.

Each address may fail ``burst`` times at once, then ``per_minute`` times a minute; while its bucket
is empty every attempt from it is refused with 429 and ``retry-after`` (the seconds until the next
token), right key or wrong, *unless the key already succeeded from that address before* (the auth
guard remembers those pairs, bounded). Letting any correct key through from a throttled address would
hand a guesser a full-speed oracle (200 against 429) and make the throttle decorative; a key that
worked from there before is no guess, so the people already working behind the attacked address (a
shared NAT) are never slowed. A newcomer behind it waits: a refused attempt costs no token, so the
next one opens ``60 / per_minute`` seconds later (6 s by default), a success costs none either, and an
address that stops failing is whole again after ``burst * 60 / per_minute`` seconds. A correct key from
an address that is not throttled is never slowed: the check is one dict lookup.

IPv6 addresses count per /64, the block one host usually holds (RFC 6177), so rotating addresses
inside it gains nothing. The table keeps at most ``max_addresses`` entries, dropping the least
recently failed one: an attacker rotating through more addresses than that gets a fresh burst on each,
never more memory.

Hand-written rather than ``limits`` (a well-kept rate-limit library): its in-memory storage grows a
key per address for the length of the window with no cap on their number, and its moving window
keeps a timestamp per hit; a bucket is two floats.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["FailureThrottle", "OncePer", "address_key"]

_MAX_ADDRESSES = 10_000


def address_key(remote: str | None) -> str:
    """The throttle's key for a peer address: itself for IPv4, its /64 for IPv6."""
    if not remote:
        return "unknown"
    if ":" not in remote:
        return remote
    try:
        network = ipaddress.IPv6Network((remote, 64), strict=False)
    except ValueError:
        return remote
    return str(network)


class FailureThrottle:
    """Token buckets of failed authentications, by address key."""

    def __init__(
        self,
        burst: int,
        per_minute: float,
        *,
        max_addresses: int = _MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst = float(burst)
        self._rate = per_minute / 60.0
        self._max = max_addresses
        self._clock = clock
        # address -> (tokens, when they were counted); absent: a full bucket.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _tokens(self, address: str, now: float) -> float:
        entry = self._buckets.get(address)
        if entry is None:
            return self._burst
        tokens, then = entry
        return min(self._burst, tokens + (now - then) * self._rate)

    def retry_after(self, address: str) -> float | None:
        """Seconds until ``address`` may try again, or None when it may now."""
        if address not in self._buckets:  # the common case, an address that never failed
            return None
        now = self._clock()
        tokens = self._tokens(address, now)
        if tokens >= 1.0:
            return None
        return (1.0 - tokens) / self._rate

    def failed(self, address: str) -> None:
        now = self._clock()
        tokens = self._tokens(address, now) - 1.0
        self._buckets[address] = (max(tokens, 0.0), now)
        self._buckets.move_to_end(address)
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)


class OncePer:
    """Whether to do something (write a log line) for a key now: at most once per ``interval`` s per
    key, in a table bounded like ``FailureThrottle``'s."""

    def __init__(
        self,
        interval: float,
        *,
        max_keys: int = _MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = interval
        self._max = max_keys
        self._clock = clock
        self._last: OrderedDict[str, float] = OrderedDict()

    def __call__(self, key: str) -> bool:
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            return False
        self._last[key] = now
        self._last.move_to_end(key)
        while len(self._last) > self._max:
            self._last.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._last)
