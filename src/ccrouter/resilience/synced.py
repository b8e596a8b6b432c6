"""Redis windows (``RedisWindows``) that the request path reads from a local mirror.

A request used to cost three Redis round trips (read the windows, reserve, add tokens). Here only the
check that must be atomic across instances goes to Redis at once: ``reserve`` on a target with a
configured limit. The rest waits for the next ``sync`` (every ``shared.TICK_S``, driven by
``SharedLive``): requests of targets without limits and every token count are sent in one batch, and
the windows of every key read since are read back into the mirror. A cooldown is written at once and
announced to the other instances (``SharedLive``'s channel), which note it as soon as it arrives.

While Redis does not answer (``outage``), everything is counted in this instance's memory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from ccrouter.resilience.ratelimits import ConfiguredLimits
from ccrouter.resilience.windows import RedisWindows, WindowUsage

__all__ = ["SyncedWindows"]

# Keys whose windows the mirror reads back; past this many, the least recent are dropped.
_MAX_WATCHED = 10_000


class SyncedWindows:
    """``WindowStore`` over ``RedisWindows``, read from a mirror refreshed by ``sync``."""

    def __init__(self, redis: RedisWindows) -> None:
        self.redis = redis
        self.outage = redis.outage
        self._mirror: dict[str, WindowUsage] = {}
        # Keys read since the last sync (dict: insertion order, for the bound).
        self._watched: dict[str, None] = {}
        self._requests: dict[str, list[float]] = {}
        self._tokens: dict[str, list[tuple[float, int]]] = {}
        self._cooldowns: dict[str, float] = {}
        # Told (key, until) of each cooldown this instance sets (``SharedLive`` announces it).
        self.on_cooldown: Callable[[str, float], None] | None = None

    @property
    def client(self) -> Any:
        return self.redis.client

    async def reserve(self, key: str, limits: ConfiguredLimits, now: float) -> bool:
        if not self.outage.up:
            return await self.redis.local.reserve(key, limits, now)
        if limits.any:
            # Checked and counted as one Lua script: two instances never both take the last slot.
            return await self.redis.reserve(key, limits, now)
        self._requests.setdefault(key, []).append(now)
        return True

    async def frees_in(self, key: str, limits: ConfiguredLimits, now: float) -> float:
        if not self.outage.up:
            return await self.redis.local.frees_in(key, limits, now)
        return await self.redis.frees_in(key, limits, now)

    async def add_tokens(self, key: str, tokens: int, now: float) -> None:
        if tokens <= 0:
            return
        if not self.outage.up:
            await self.redis.local.add_tokens(key, tokens, now)
            return
        self._tokens.setdefault(key, []).append((now, tokens))

    async def usage(self, keys: Sequence[str], now: float) -> list[WindowUsage]:
        if not self.outage.up:
            return await self.redis.local.usage(keys, now)
        return [self._usage(key) for key in keys]

    def _usage(self, key: str) -> WindowUsage:
        if key not in self._watched:
            if len(self._watched) >= _MAX_WATCHED:
                del self._watched[next(iter(self._watched))]
            self._watched[key] = None
        found = self._mirror.get(key, WindowUsage())
        # What this instance counted since the last sync is not in the mirror yet.
        requests = self._requests.get(key)
        tokens = self._tokens.get(key)
        cooldown = self._cooldowns.get(key, 0.0)
        if requests is None and tokens is None and cooldown <= found.cooldown_until:
            return found
        pending = len(requests) if requests else 0
        return replace(
            found,
            requests_minute=found.requests_minute + pending,
            requests_day=found.requests_day + pending,
            tokens_minute=found.tokens_minute + (sum(t for _, t in tokens) if tokens else 0),
            cooldown_until=max(found.cooldown_until, cooldown),
        )

    async def set_cooldown(self, key: str, until: float) -> None:
        self.note_cooldown(key, until)
        await self.redis.set_cooldown(key, until)
        if self.on_cooldown is not None:
            self.on_cooldown(key, until)

    def note_cooldown(self, key: str, until: float) -> None:
        """A cooldown another instance announced (or this one set)."""
        if until > self._cooldowns.get(key, 0.0):
            self._cooldowns[key] = until

    async def sync(self, now: float) -> None:
        """Send what was counted here since the last sync, then read back every watched key's
        windows. Raises when Redis does not answer (the counts are kept for the next try)."""
        requests, tokens = self._requests, self._tokens
        self._requests, self._tokens = {}, {}
        if requests or tokens:
            try:
                await self.redis.add_batch(requests, tokens)
            except BaseException:
                for key, times in requests.items():
                    self._requests.setdefault(key, [])[:0] = times
                for key, items in tokens.items():
                    self._tokens.setdefault(key, [])[:0] = items
                raise
        keys = list(self._watched)
        if keys:
            read = await self.redis.read(keys, now)
            self._mirror = dict(zip(keys, read, strict=True))
        # Cooldowns that ended are in the mirror (Redis keeps them an hour past their end).
        self._cooldowns = {k: v for k, v in self._cooldowns.items() if v > now}

    async def aclose(self) -> None:
        await self.redis.aclose()

    async def ping(self) -> None:
        await self.redis.ping()
