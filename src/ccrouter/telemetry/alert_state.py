"""Who announces alerts, and which are announced: one process (``LocalAlertState``) or one holder
among every instance sharing a Redis (``RedisAlertState``, with ``state.redis_url``).

With Redis, the instances compete for a lease, ``{prefix}:alerts:lease``: taken with ``SET NX PX``,
renewed by its holder with a compare-and-renew script every quarter of ``alerts.interval_s``, for
three quarters of it, and released (compare-and-delete) at a clean shutdown. Only the holder
evaluates the rules and sends. A holder that dies without releasing loses the lease within
three quarters of an interval, and the other instances try every quarter: one of them takes over
within one interval. What is announced as firing lives in the hash ``{prefix}:alerts:firing``
(alert key -> alert and start time), written only while the lease is held (one script checks the
lease and writes), so a new holder sends ``resolved`` for what its predecessor announced instead of
a second ``firing``.

Redis unreachable (the rule): an instance holding the lease when Redis stops answering keeps
evaluating and sending for as long as Redis stays unreachable, keeping the firing state in memory,
and writes it back once Redis answers and the lease is still (or again) its own; an instance that
did not hold it sends nothing until it can take the lease, and when Redis answers again it waits
one lease time before seeking it, so the holder takes it back first. So a Redis outage leaves one sender
(no silence, no storm); only a partition that cuts the holder alone off Redis can make two (the old
holder and the instance that took the lease over), never one per instance. A notice is recorded
after its webhooks answered: a holder dying between the two makes its successor send it again.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import orjson

from ccrouter.config import StateConfig

__all__ = ["AlertState", "Announced", "LocalAlertState", "RedisAlertState", "open_alert_state"]

log = logging.getLogger("ccrouter.alerts")

# The lease is renewed (or sought) every TICK of the evaluation interval and lasts TTL of it.
TICK = 0.25
TTL = 0.75
# Redis commands wait at most this long (then the instance counts Redis as unreachable).
_REDIS_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class Announced:
    """An alert announced as firing: the ``Alert``'s fields and when it started."""

    key: str
    alert: dict[str, Any]
    started_at: float


class AlertState(Protocol):
    # Whether other instances share it (then ``keep`` must be called every TICK of the interval).
    @property
    def shared(self) -> bool: ...

    @property
    def holding(self) -> bool:
        """Whether this instance held the right to announce at the last ``keep``."""
        ...

    async def keep(self, interval_s: float) -> bool:
        """Take or renew the right to announce; True while this instance may announce."""
        ...

    def may_send(self) -> bool:
        """Whether this instance may announce now (checked before each notice is sent)."""
        ...

    async def announced(self) -> dict[str, Announced]:
        """The alerts announced as firing (by this instance or a previous holder)."""
        ...

    async def record(self, status: Literal["firing", "resolved"], entry: Announced) -> None:
        """A notice was delivered: ``entry`` is now firing, or no longer."""
        ...

    async def release(self) -> None:
        """At a clean shutdown: give up the right to announce."""
        ...


class LocalAlertState:
    """One process: it always announces; what it announced is kept in memory."""

    shared = False
    holding = True

    def __init__(self) -> None:
        self._firing: dict[str, Announced] = {}

    async def keep(self, interval_s: float) -> bool:
        return True

    def may_send(self) -> bool:
        return True

    async def announced(self) -> dict[str, Announced]:
        return dict(self._firing)

    async def record(self, status: Literal["firing", "resolved"], entry: Announced) -> None:
        if status == "firing":
            self._firing[entry.key] = entry
        else:
            self._firing.pop(entry.key, None)

    async def release(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


# Renew the lease only if it is still ours (a holder whose lease expired and was taken must not
# extend its successor's).
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""
# Record a delivered notice, only while holding the lease (ARGV: token, 'firing'|'resolved', key,
# entry). A stale holder cut off by a partition cannot overwrite its successor's state.
_RECORD = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] == 'firing' then
  redis.call('hset', KEYS[2], ARGV[3], ARGV[4])
else
  redis.call('hdel', KEYS[2], ARGV[3])
end
return 1
"""
# Replace the whole firing state by the holder's (after an outage it announced through), if held.
_REPLACE = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('del', KEYS[2])
for i = 2, #ARGV, 2 do
  redis.call('hset', KEYS[2], ARGV[i], ARGV[i + 1])
end
return 1
"""


class RedisAlertState:
    """The lease and the firing state in Redis, shared by every instance with the same prefix."""

    def __init__(self, client: Any, prefix: str, clock: Callable[[], float] = time.monotonic) -> None:
        from redis.exceptions import RedisError

        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError)
        self._redis = client
        self._clock = clock
        self.lease_key = f"{prefix}:alerts:lease"
        self.firing_key = f"{prefix}:alerts:firing"
        self.token = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(6).hex()}"
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._record = client.register_script(_RECORD)
        self._replace = client.register_script(_REPLACE)
        # The lease is ours until this monotonic time (0: not ours); ``_outage``: we held it when
        # Redis stopped answering, and announce through the outage.
        self._until = 0.0
        self._outage = False
        self._firing: dict[str, Announced] = {}
        # The firing state changed while Redis was unreachable: written back before it is read.
        self._dirty = False
        # A non-holder saw Redis unreachable: it lets the holder take the lease back first.
        self._saw_outage = False
        self._defer_until = 0.0

    @classmethod
    def connect(cls, url: str, prefix: str) -> RedisAlertState:
        # Optional at import time: only needed with state.redis_url.
        import redis
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.driver_info import DriverInfo

        client = redis.asyncio.from_url(
            url,
            socket_connect_timeout=_REDIS_TIMEOUT_S,
            socket_timeout=_REDIS_TIMEOUT_S,
            # A failure must surface at once: the outage rule, not redis-py's retries, decides.
            retry=Retry(NoBackoff(), 0),
            # Told its version, redis-py does not scan the package metadata (on the loop) to connect.
            driver_info=DriverInfo(lib_version=redis.__version__),
        )
        return cls(client, prefix)

    shared = True

    @property
    def holding(self) -> bool:
        return self._until > 0.0 or self._outage

    def may_send(self) -> bool:
        return self._outage or self._clock() < self._until

    async def keep(self, interval_s: float) -> bool:
        ttl_ms = max(1, int(interval_s * TTL * 1000))
        started = self._clock()
        try:
            if self._until > 0.0 or self._outage:
                held = bool(await self._renew(keys=[self.lease_key], args=[self.token, ttl_ms]))
                if not held:  # expired meanwhile: take it again unless another instance has
                    held = await self._acquire(ttl_ms)
            else:
                held = await self._seek(started, ttl_ms)
            if held and self._dirty:
                await self._write_back()
        except self._errors as exc:
            return self._unreachable(exc)
        if self._outage:
            log.warning("alerts: Redis answers again; %s", "still the holder" if held else "lease lost")
            self._outage = False
        if not held:
            self._dirty = False  # what it announced through an outage is its successor's to judge
            if self._until > 0.0:
                log.info("alerts: another instance holds the alert lease now")
        was = self._until > 0.0
        self._until = started + ttl_ms / 1000 if held else 0.0
        if held and not was:
            log.info("alerts: this instance holds the alert lease (evaluates and sends)")
        return held

    async def _seek(self, now: float, ttl_ms: int) -> bool:
        if self._saw_outage:
            # Redis answers again: the instance that announced through the outage gets one lease
            # time to take the lease back and write what it announced, before the others compete.
            await self._redis.ping()
            self._saw_outage = False
            self._defer_until = now + ttl_ms / 1000
        if now < self._defer_until:
            return False
        return await self._acquire(ttl_ms)

    async def _acquire(self, ttl_ms: int) -> bool:
        return bool(await self._redis.set(self.lease_key, self.token, nx=True, px=ttl_ms))

    def _unreachable(self, exc: BaseException) -> bool:
        if self._until > 0.0 and not self._outage:
            log.warning(
                "alerts: Redis unreachable (%s); this instance held the alert lease and keeps sending"
                " until Redis is back",
                type(exc).__name__,
            )
            self._outage = True
        elif not self._outage and self._until == 0.0:
            self._saw_outage = True
            log.debug("alerts: Redis unreachable (%s); not the holder, not sending", type(exc).__name__)
        self._until = 0.0
        return self._outage

    async def _write_back(self) -> None:
        args: list[str | bytes] = [self.token]
        for key, entry in self._firing.items():
            args += [key, _encode(entry)]
        if await self._replace(keys=[self.lease_key, self.firing_key], args=args):
            self._dirty = False

    async def announced(self) -> dict[str, Announced]:
        if not self._dirty:
            try:
                raw = await self._redis.hgetall(self.firing_key)
            except self._errors:
                return dict(self._firing)  # the outage rule: the holder goes on from what it knows
            self._firing = {k.decode(): _decode(k.decode(), v) for k, v in raw.items()}
        return dict(self._firing)

    async def record(self, status: Literal["firing", "resolved"], entry: Announced) -> None:
        if status == "firing":
            self._firing[entry.key] = entry
        else:
            self._firing.pop(entry.key, None)
        if self._dirty:
            return
        try:
            await self._record(
                keys=[self.lease_key, self.firing_key],
                args=[self.token, status, entry.key, _encode(entry)],
            )
        except self._errors:
            self._dirty = True

    async def release(self) -> None:
        if self._until == 0.0 and not self._outage:
            return
        self._until, self._outage = 0.0, False
        try:
            await self._release(keys=[self.lease_key], args=[self.token])
        except self._errors as exc:
            log.warning("alerts: the alert lease was not released (%s); it expires", type(exc).__name__)

    async def aclose(self) -> None:
        await self._redis.aclose()


def _encode(entry: Announced) -> bytes:
    return orjson.dumps({"alert": entry.alert, "started_at": entry.started_at})


def _decode(key: str, raw: bytes) -> Announced:
    data = orjson.loads(raw)
    return Announced(key, data["alert"], float(data["started_at"]))


def open_alert_state(config: StateConfig) -> LocalAlertState | RedisAlertState:
    """The lease and firing state in Redis when ``state.redis_url`` is set, else in this process."""
    if config.redis_url is None:
        return LocalAlertState()
    return RedisAlertState.connect(config.redis_url.get_secret_value(), config.key_prefix)
