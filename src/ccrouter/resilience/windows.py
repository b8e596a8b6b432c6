"""Sliding-window request and token counts and cooldowns, shared by every gateway instance that uses
the same store: ``MemoryWindows`` (one process) or ``RedisWindows`` (``state.redis_url``).

A request is counted by ``reserve`` *before* it is sent, atomically with the check against the
configured limits, so two instances can never both take the last slot (Redis runs the check and the
update as one Lua script).
"""

from __future__ import annotations

import itertools
import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ccrouter.config import StateConfig
from ccrouter.resilience.buckets import BucketRing
from ccrouter.resilience.outage import Outage
from ccrouter.resilience.ratelimits import ConfiguredLimits

__all__ = [
    "REDIS_TIMEOUT_S",
    "MemoryWindows",
    "RedisWindows",
    "WindowStore",
    "WindowUsage",
    "connect_redis",
    "open_windows",
]

log = logging.getLogger("ccrouter.resilience")

MINUTE = 60.0
DAY = 86_400.0
# Every call to Redis gives up after this long (then the instance counts in memory): a request never
# waits long on Redis.
REDIS_TIMEOUT_S = 0.5


@dataclass(frozen=True, slots=True)
class WindowUsage:
    """Requests and tokens in the last minute, requests in the last day, and the cooldown end."""

    requests_minute: int = 0
    tokens_minute: int = 0
    requests_day: int = 0
    cooldown_until: float = 0.0


class WindowStore(Protocol):
    async def reserve(self, key: str, limits: ConfiguredLimits, now: float) -> bool:
        """Count one request unless it would pass a configured rpm/rpd limit or tpm is spent."""
        ...

    async def frees_in(self, key: str, limits: ConfiguredLimits, now: float) -> float:
        """Seconds until ``reserve`` could grant ``key`` again: when the oldest request (or tokens)
        counted against the limit that refused leaves its window. Asked only after a refusal."""
        ...

    async def add_tokens(self, key: str, tokens: int, now: float) -> None: ...

    async def usage(self, keys: Sequence[str], now: float) -> list[WindowUsage]: ...

    async def set_cooldown(self, key: str, until: float) -> None:
        """Mark ``key`` cooling until ``until`` (keeps a later end already set)."""
        ...

    async def aclose(self) -> None: ...

    async def ping(self) -> None:
        """Returns when the shared state answers (at once for in-process windows); raises when not."""
        ...


# Minute windows in 1 s buckets, the day window in 5 min buckets. A bucket counts in full until its newest
# request leaves the window, so usage may include up to one bucket of older requests: limits are reached
# early by at most that much, never passed (conservative).
MINUTE_BUCKET_S = 1.0
DAY_BUCKET_S = 300.0
_REQUESTS, _TOKENS = 0, 1


@dataclass(slots=True)
class _Window:
    minute: BucketRing = field(default_factory=lambda: BucketRing(MINUTE, MINUTE_BUCKET_S, 2))
    day: BucketRing = field(default_factory=lambda: BucketRing(DAY, DAY_BUCKET_S, 1))
    cooldown_until: float = 0.0

    def usage(self) -> WindowUsage:
        # Counts are sums of whole numbers, exact in a float.
        minute = self.minute.totals
        return WindowUsage(
            int(minute[_REQUESTS]), int(minute[_TOKENS]), int(self.day.totals[0]), self.cooldown_until
        )


class MemoryWindows:
    """In-process windows (the default): fixed-size bucket rings per key, whatever the traffic."""

    def __init__(self) -> None:
        self._windows: dict[str, _Window] = {}

    def _get(self, key: str, now: float) -> _Window:
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window()
        window.minute.expire(now)
        window.day.expire(now)
        return window

    async def reserve(self, key: str, limits: ConfiguredLimits, now: float) -> bool:
        window = self._get(key, now)
        minute, day = window.minute.totals, window.day.totals
        if limits.rpm is not None and minute[_REQUESTS] >= limits.rpm:
            return False
        if limits.rpd is not None and day[0] >= limits.rpd:
            return False
        if limits.tpm is not None and minute[_TOKENS] >= limits.tpm:
            return False
        window.minute.add(now, _REQUESTS)
        window.day.add(now, 0)
        return True

    async def frees_in(self, key: str, limits: ConfiguredLimits, now: float) -> float:
        window = self._get(key, now)
        minute, day = window.minute.totals, window.day.totals
        waits = [0.0]
        if (limits.rpm is not None and minute[_REQUESTS] >= limits.rpm) or (
            limits.tpm is not None and minute[_TOKENS] >= limits.tpm
        ):
            waits.append(window.minute.frees_in(now))
        if limits.rpd is not None and day[0] >= limits.rpd:
            waits.append(window.day.frees_in(now))
        return max(waits)

    async def add_tokens(self, key: str, tokens: int, now: float) -> None:
        if tokens > 0:
            self._get(key, now).minute.add(now, _TOKENS, tokens)

    async def usage(self, keys: Sequence[str], now: float) -> list[WindowUsage]:
        return [self._get(key, now).usage() for key in keys]

    async def set_cooldown(self, key: str, until: float) -> None:
        # No pruning here: ``until`` is in the future, not "now".
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window()
        window.cooldown_until = max(window.cooldown_until, until)

    async def aclose(self) -> None:
        self._windows.clear()

    async def ping(self) -> None:
        return None


# KEYS: requests zset, day hash, tokens zset. ARGV: now, rpm, rpd, tpm, member (0: no limit).
# The day window is a hash of 5-minute buckets (field: bucket number, value: requests), like the
# in-memory ring: one member per request for 24 h would hold millions of members on a busy team
# gateway. A bucket counts in full until it is wholly more than a day old (conservative).
_RESERVE = """
local now = tonumber(ARGV[1])
local rpm, rpd, tpm = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 60)
if rpm > 0 and redis.call('ZCARD', KEYS[1]) >= rpm then return 0 end
if rpd > 0 or redis.call('HLEN', KEYS[2]) > 300 then
  local oldest = math.floor((now - 86400) / 300)
  local fields = redis.call('HGETALL', KEYS[2])
  local used = 0
  for i = 1, #fields, 2 do
    if tonumber(fields[i]) < oldest then
      redis.call('HDEL', KEYS[2], fields[i])
    else
      used = used + tonumber(fields[i + 1])
    end
  end
  if rpd > 0 and used >= rpd then return 0 end
end
if tpm > 0 then
  local used = 0
  for _, m in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
    used = used + tonumber(string.match(m, ':(%d+)$'))
  end
  if used >= tpm then return 0 end
end
redis.call('ZADD', KEYS[1], now, ARGV[5])
redis.call('HINCRBY', KEYS[2], math.floor(now / 300), 1)
redis.call('EXPIRE', KEYS[1], 120)
redis.call('EXPIRE', KEYS[2], 172800)
return 1
"""


class RedisWindows:
    """Windows in Redis, shared by every instance with the same ``prefix``; times are wall-clock
    seconds, so instances must share a clock (NTP). While Redis cannot be reached, this instance
    keeps counting in memory instead of failing requests (logged once per outage)."""

    def __init__(self, client: Any, prefix: str, outage: Outage | None = None) -> None:
        from redis.exceptions import RedisError

        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError)
        self._local = MemoryWindows()
        self.outage = outage if outage is not None else Outage("counting in memory")
        self._redis = client
        self._prefix = prefix
        self._reserve = client.register_script(_RESERVE)
        self._ids = itertools.count()
        # Members must be unique across instances: pid + random tag + counter.
        self._tag = f"{os.getpid()}-{os.urandom(4).hex()}"

    @classmethod
    def connect(cls, url: str, prefix: str, outage: Outage | None = None) -> RedisWindows:
        return cls(connect_redis(url), prefix, outage)

    @property
    def client(self) -> Any:
        """The Redis client (shared with ``ccrouter.resilience.shared``)."""
        return self._redis

    @property
    def local(self) -> MemoryWindows:
        """The in-memory windows counted while Redis cannot be reached."""
        return self._local

    def _keys(self, key: str) -> tuple[str, str, str, str]:
        base = f"{self._prefix}:rl:{key}"
        return f"{base}:req", f"{base}:days", f"{base}:tok", f"{base}:cool"

    def _member(self, now: float, tokens: int | None = None) -> str:
        member = f"{now:.6f}-{self._tag}-{next(self._ids)}"
        return member if tokens is None else f"{member}:{tokens}"

    def _unreachable(self, exc: BaseException) -> None:
        self.outage.failed(exc)

    async def reserve(self, key: str, limits: ConfiguredLimits, now: float) -> bool:
        req, day, tok, _ = self._keys(key)
        args = [now, limits.rpm or 0, limits.rpd or 0, limits.tpm or 0, self._member(now)]
        try:
            granted = bool(await self._reserve(keys=[req, day, tok], args=args))
        except self._errors as exc:
            self._unreachable(exc)
            return await self._local.reserve(key, limits, now)
        self.outage.answered()
        return granted

    async def frees_in(self, key: str, limits: ConfiguredLimits, now: float) -> float:
        try:
            return await self._frees_in(key, limits, now)
        except self._errors as exc:
            self._unreachable(exc)
            return await self._local.frees_in(key, limits, now)

    async def _frees_in(self, key: str, limits: ConfiguredLimits, now: float) -> float:
        req, day, tok, _ = self._keys(key)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(req, now - MINUTE, "+inf", start=0, num=1, withscores=True)
            pipe.zrangebyscore(tok, now - MINUTE, "+inf", start=0, num=1, withscores=True)
            pipe.hgetall(day)
            oldest_request, oldest_tokens, day_buckets = await pipe.execute()
        usage = (await self._usage([key], now))[0]
        waits = [0.0]
        if limits.rpm is not None and usage.requests_minute >= limits.rpm and oldest_request:
            waits.append(oldest_request[0][1] + MINUTE - now)
        if limits.tpm is not None and usage.tokens_minute >= limits.tpm and oldest_tokens:
            waits.append(oldest_tokens[0][1] + MINUTE - now)
        if limits.rpd is not None and usage.requests_day >= limits.rpd:
            first = (now - DAY) // DAY_BUCKET_S
            live = [int(bucket) for bucket in day_buckets if int(bucket) >= first]
            if live:
                # A bucket counts until it is wholly more than a day old (see ``_RESERVE``).
                waits.append((min(live) + 1) * DAY_BUCKET_S + DAY - now)
        return max(0.0, *waits)

    async def add_tokens(self, key: str, tokens: int, now: float) -> None:
        if tokens <= 0:
            return
        _, _, tok, _ = self._keys(key)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zadd(tok, {self._member(now, tokens): now})
                pipe.expire(tok, 120)
                await pipe.execute()
        except self._errors as exc:
            self._unreachable(exc)
            await self._local.add_tokens(key, tokens, now)

    async def add_batch(
        self, requests: dict[str, list[float]], tokens: dict[str, list[tuple[float, int]]]
    ) -> None:
        """Count requests (times) and tokens ((time, tokens)) counted elsewhere first, in one round
        trip (``ccrouter.resilience.synced``: the requests of targets without configured limits, whose
        counts only the status views read). Raises when Redis does not answer."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, times in requests.items():
                req, day, _, _ = self._keys(key)
                pipe.zadd(req, {self._member(now): now for now in times})
                for bucket, count in Counter(int(now // DAY_BUCKET_S) for now in times).items():
                    pipe.hincrby(day, str(bucket), count)
                pipe.expire(req, 120)
                pipe.expire(day, 172800)
            for key, items in tokens.items():
                tok = self._keys(key)[2]
                pipe.zadd(tok, {self._member(now, count): now for now, count in items})
                pipe.expire(tok, 120)
            await pipe.execute()

    async def read(self, keys: Sequence[str], now: float) -> list[WindowUsage]:
        """``usage`` that raises when Redis does not answer (no fallback)."""
        return await self._usage(keys, now)

    async def usage(self, keys: Sequence[str], now: float) -> list[WindowUsage]:
        try:
            return await self._usage(keys, now)
        except self._errors as exc:
            self._unreachable(exc)
            return await self._local.usage(keys, now)

    async def _usage(self, keys: Sequence[str], now: float) -> list[WindowUsage]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                req, day, tok, cool = self._keys(key)
                pipe.zcount(req, now - MINUTE, "+inf")
                pipe.zrangebyscore(tok, now - MINUTE, "+inf")
                pipe.hgetall(day)
                pipe.get(cool)
            replies = await pipe.execute()
        result = []
        for i in range(len(keys)):
            requests, members, day_buckets, cooldown = replies[4 * i : 4 * i + 4]
            tokens = sum(int(m.rsplit(b":", 1)[1]) for m in members)
            oldest = (now - DAY) // DAY_BUCKET_S
            in_day = sum(int(count) for bucket, count in day_buckets.items() if int(bucket) >= oldest)
            result.append(WindowUsage(int(requests), tokens, in_day, float(cooldown or 0.0)))
        return result

    async def set_cooldown(self, key: str, until: float) -> None:
        await self._local.set_cooldown(key, until)
        cool = self._keys(key)[3]
        try:
            current = await self._redis.get(cool)
            if current is not None and float(current) >= until:
                return
            # Kept an hour past its end so the recovery ramp can still read when the cooldown ended.
            await self._redis.set(cool, repr(until), exat=int(until) + 3600)
        except self._errors as exc:
            self._unreachable(exc)

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def ping(self) -> None:
        await self._redis.ping()

    async def delete_all(self) -> None:
        """Remove every key under the prefix (tests and ``ccrouter`` maintenance)."""
        async for name in self._redis.scan_iter(match=f"{self._prefix}:*"):
            await self._redis.delete(name)


def connect_redis(url: str) -> Any:
    """A Redis client whose every call is bounded (``REDIS_TIMEOUT_S``) and not retried inside
    redis-py: a failure surfaces at once, and the caller falls back to local state."""
    # Optional at import time: only needed with state.redis_url.
    import redis
    import redis.asyncio
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.driver_info import DriverInfo

    return redis.asyncio.from_url(
        url,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        socket_timeout=REDIS_TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),
        # Told its version, redis-py does not look it up in the package metadata (a scan of sys.path,
        # on the event loop) for every new connection of the pool.
        driver_info=DriverInfo(lib_version=redis.__version__),
    )


def open_windows(config: StateConfig) -> WindowStore:
    """In-process windows without ``state.redis_url``; with it, Redis windows read through a local
    mirror (``ccrouter.resilience.synced``), kept in step by ``ccrouter.resilience.shared``."""
    if config.redis_url is None:
        return MemoryWindows()
    from ccrouter.resilience.synced import SyncedWindows

    outage = Outage("each instance uses its own live state")
    return SyncedWindows(RedisWindows.connect(config.redis_url.get_secret_value(), config.key_prefix, outage))
