"""Live state shared through Redis (``state.redis_url``): what one instance learns about a provider,
every instance with the same ``state.key_prefix`` knows within a second.

- Breakers: a transition (open, closed) is written at once to the hash ``<prefix>:brk`` (one field per
  provider/model, the newer transition wins); every instance reads the hash each tick (``TICK_S``)
  and takes newer transitions. Every instance then reaches half-open at the same moment; the probe
  goes from the one instance that takes the open period's lease (``SET NX PX``), the others refuse.
- Statistics: each instance writes a snapshot of its own moving averages (latency, time to first
  token, output speed), outcome counts and announced rate limits every ``STATS_EVERY`` ticks to the
  hash ``<prefix>:stats`` (one field per instance); every instance merges all fresh snapshots the same
  way (``stats.merge``), so all rank alike and show the same health score.
- Sessions: the sticky route and last input size of each session (``<prefix>:sess:<id>``), written in
  batches every ``SESSION_BATCH_S`` (a new route at once) and announced on the channel
  ``<prefix>:live``; a session new to an instance is read once (``SessionUsage.load``).
- Windows and cooldowns: ``synced.SyncedWindows``, synced each tick; cooldowns are announced on the
  channel too.

A request reaches Redis only for an atomic rate-limit reservation (targets with configured limits),
a half-open probe's lease and the first turn of a session this instance has not seen. Every call is
bounded (``windows.REDIS_TIMEOUT_S``). While Redis does not answer, each instance keeps its own state
(logged once); when it answers again, the next tick sends what waited and reads everything back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import orjson

from ccrouter.resilience.outage import redis_errors
from ccrouter.resilience.synced import SyncedWindows
from ccrouter.status import BreakerState

if TYPE_CHECKING:
    from ccrouter.resilience.breaker import CircuitBreaker
    from ccrouter.resilience.live import LiveState
    from ccrouter.routing.session import SessionUsage

__all__ = ["PROBE_LEASE_S", "SESSION_BATCH_S", "STATS_EVERY", "TICK_S", "SharedLive"]

log = logging.getLogger("ccrouter.resilience")

TICK_S = 0.5
# Statistics snapshots are written every this many ticks (1 s); ones older than ``_STALE_S`` are from
# an instance that stopped and are left out of the merge.
STATS_EVERY = 2
_STALE_S = 5.0
SESSION_BATCH_S = 0.05
_SESSION_TTL_S = 6 * 3600
# An instance that took a probe's lease and died mid-probe: another may probe after this long.
PROBE_LEASE_S = 60.0
_RESUBSCRIBE_S = 1.0
_MAX_PENDING_SESSIONS = 10_000

# KEYS: the breakers hash. ARGV: field, "at|state|reason|tag". Set only when newer than the stored one.
_SET_BREAKER = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local at = tonumber(string.match(current, '^([^|]+)'))
  local new = tonumber(string.match(ARGV[2], '^([^|]+)'))
  if at and new and at >= new then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

# KEYS: the lease. ARGV: holder, ttl ms. Taken when free; renewed by its holder.
_TAKE_LEASE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


class SharedLive:
    """The sync between this instance's live state and Redis (one per process, kept across reloads)."""

    def __init__(
        self, windows: SyncedWindows, prefix: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.windows = windows
        self.outage = windows.outage
        self._redis: Any = windows.client
        self._prefix = prefix
        self._clock = clock
        self.tag = f"{os.getpid()}-{os.urandom(4).hex()}"
        self.channel = f"{prefix}:live"
        self._breakers_key = f"{prefix}:brk"
        self._stats_key = f"{prefix}:stats"
        self._set_breaker = self._redis.register_script(_SET_BREAKER)
        self._take_lease = self._redis.register_script(_TAKE_LEASE)
        self._errors = redis_errors()
        self._live: LiveState | None = None
        self._sessions: SessionUsage | None = None
        self._pending: dict[str, dict[str, str | int]] = {}
        self._session_wake: asyncio.Event | None = None
        self._urgent = False
        self._tasks: list[asyncio.Task[None]] = []
        self._writes: set[asyncio.Task[Any]] = set()
        self._ticks = 0
        # Whether the last tick reached Redis: the first one that does after an outage re-syncs.
        self._synced = True
        windows.on_cooldown = self._cooldown_set

    @property
    def up(self) -> bool:
        return self.outage.up

    def attach(self, live: LiveState, sessions: SessionUsage) -> None:
        """Sync ``live`` (the configuration now serving) and ``sessions`` from now on."""
        self._live = live
        self._sessions = sessions
        sessions.remote = self

    def start(self) -> None:
        self._session_wake = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._tick_loop(), name="ccrouter-shared-tick"),
            asyncio.create_task(self._listen_loop(), name="ccrouter-shared-listen"),
            asyncio.create_task(self._session_loop(), name="ccrouter-shared-sessions"),
        ]

    async def aclose(self) -> None:
        """Stop the background work (after one last try to send what waits); the client is the
        windows', closed with them."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self.up:
            with contextlib.suppress(*self._errors):
                await self._flush_sessions()
        for task in list(self._writes):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task

    def _failed(self, exc: BaseException) -> None:
        self.outage.failed(exc)
        self._synced = False
        if self._live is not None:
            self._live.forget_merged()

    def _spawn(self, write: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(write)
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    # ------------------------------------------------------------------ the tick

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                await self.sync()
            except Exception:  # the boundary: the loop must outlive any bug in one round
                log.exception("shared state: sync failed")

    async def sync(self) -> None:
        """One round: send this instance's figures, read back everyone's (the tick; tests call it)."""
        now = self._clock()
        live = self._live
        self._ticks += 1
        resync = not self._synced
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                if live is not None and (resync or self._ticks % STATS_EVERY == 0):
                    pipe.hset(self._stats_key, self.tag, orjson.dumps([now, live.snapshot(now)]))
                    pipe.expire(self._stats_key, 3600)
                pipe.hgetall(self._breakers_key)
                pipe.hgetall(self._stats_key)
                replies = await pipe.execute()
            breakers, snapshots = replies[-2], replies[-1]
            if resync:
                # Back after an outage: what this instance did meanwhile goes out, what it missed
                # comes in (sessions are read again when next seen).
                await self._push_breakers(breakers)
                await self._flush_sessions()
                if self._sessions is not None:
                    self._sessions.forget()
            await self.windows.sync(now)
        except self._errors as exc:
            self._failed(exc)
            return
        self.outage.answered()
        self._synced = True
        if live is not None:
            self._apply_breakers(live, breakers)
            self._apply_stats(live, snapshots, now)

    def _apply_breakers(self, live: LiveState, records: dict[bytes, bytes]) -> None:
        for field, value in records.items():
            at, state, reason, tag = value.decode().split("|", 3)
            if tag != self.tag:
                live.apply_breaker(field.decode(), state, float(at), reason)  # type: ignore[arg-type]

    async def _push_breakers(self, records: dict[bytes, bytes]) -> None:
        live = self._live
        if live is None:
            return
        stored = {k.decode(): float(v.split(b"|", 1)[0]) for k, v in records.items()}
        for key, breaker in live.breakers().items():
            if breaker.changed_at > stored.get(key, 0.0):
                await self._write_breaker(key, breaker)

    def _apply_stats(self, live: LiveState, snapshots: dict[bytes, bytes], now: float) -> None:
        fresh: list[dict[str, list[Any]]] = []
        stale: list[bytes] = []
        for field, value in snapshots.items():
            written, targets = orjson.loads(value)
            if now - written > _STALE_S:
                stale.append(field)
            else:
                fresh.append(targets)
        live.apply_merged(fresh, now)
        if stale:
            self._spawn(self._drop(stale))

    async def _drop(self, fields: list[bytes]) -> None:
        with contextlib.suppress(*self._errors):
            await self._redis.hdel(self._stats_key, *fields)

    # ------------------------------------------------------------------ breakers

    def breaker_changed(self, key: str, breaker: CircuitBreaker) -> None:
        """``key`` ("provider/model")'s breaker opened or closed here: written at once (in the
        background: the request that tripped it is not held up)."""
        if self.up:
            self._spawn(self._write_breaker_logged(key, breaker))

    async def _write_breaker_logged(self, key: str, breaker: CircuitBreaker) -> None:
        try:
            await self._write_breaker(key, breaker)
        except self._errors as exc:
            self._failed(exc)

    async def _write_breaker(self, key: str, breaker: CircuitBreaker) -> None:
        state: BreakerState = "open" if breaker.state != "closed" else "closed"
        at = breaker.opened_at if state == "open" else breaker.changed_at
        # The reason is ours (no secrets) but may hold anything: keep it one line.
        reason = breaker.reason.replace("|", "/").replace("\n", " ")
        record = f"{at!r}|{state}|{reason}|{self.tag}"
        await self._set_breaker(keys=[self._breakers_key], args=[key, record])
        # Announced too: the others apply it within milliseconds, not at their next round (a
        # failing provider would otherwise get a round's worth of calls from every instance).
        await self._redis.publish(self.channel, f"{self.tag}|b|{key}|{record}")

    async def take_probe(self, key: str, opened_at: float) -> bool:
        """Whether this instance sends the half-open probe of the open period that began at
        ``opened_at`` (True without Redis: each instance then decides alone)."""
        if not self.up:
            return True
        lease = f"{self._prefix}:probe:{key}:{opened_at!r}"
        try:
            taken = await self._take_lease(keys=[lease], args=[self.tag, int(PROBE_LEASE_S * 1000)])
        except self._errors as exc:
            self._failed(exc)
            return True
        return bool(taken)

    async def lease(self, name: str, ttl_s: float) -> bool:
        """Whether this instance holds ``name``'s lease for the next ``ttl_s`` (taken when free, kept
        by its holder; True without Redis)."""
        if not self.up:
            return True
        try:
            taken = await self._take_lease(
                keys=[f"{self._prefix}:lease:{name}"], args=[self.tag, max(1, int(ttl_s * 1000))]
            )
        except self._errors as exc:
            self._failed(exc)
            return True
        return bool(taken)

    # ------------------------------------------------------------------ sessions

    def session_changed(self, session_id: str, route: str | None, input_tokens: int | None) -> None:
        entry = self._pending.get(session_id)
        if entry is None:
            if len(self._pending) >= _MAX_PENDING_SESSIONS:
                del self._pending[next(iter(self._pending))]
            entry = self._pending[session_id] = {}
        if route is not None:
            entry["r"] = route
            # A session's next turn may come at once, to another instance: no waiting for a batch.
            self._urgent = True
        if input_tokens is not None:
            entry["i"] = input_tokens
        if self._session_wake is not None:
            self._session_wake.set()

    async def fetch_session(self, session_id: str) -> tuple[str | None, int | None] | None:
        if not self.up:
            return None
        try:
            route, size = await self._redis.hmget(self._session_key(session_id), "r", "i")
        except self._errors as exc:
            self._failed(exc)
            return None
        if route is None and size is None:
            return None
        return (route.decode() if route is not None else None, int(size) if size is not None else None)

    def _session_key(self, session_id: str) -> str:
        return f"{self._prefix}:sess:{session_id}"

    async def _session_loop(self) -> None:
        assert self._session_wake is not None
        while True:
            await self._session_wake.wait()
            if not self._urgent:
                # Input sizes of the next few milliseconds go in the same round trip.
                await asyncio.sleep(SESSION_BATCH_S)
            self._urgent = False
            self._session_wake.clear()
            if not self.up:
                continue  # kept for the tick that finds Redis back
            try:
                await self._flush_sessions()
            except self._errors as exc:
                self._failed(exc)

    async def _flush_sessions(self) -> None:
        batch, self._pending = self._pending, {}
        if not batch:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for session_id, fields in batch.items():
                    key = self._session_key(session_id)
                    pipe.hset(key, mapping=fields)
                    pipe.expire(key, _SESSION_TTL_S)
                pipe.publish(self.channel, f"{self.tag}|s|".encode() + orjson.dumps(batch))
                await pipe.execute()
        except BaseException:
            for session_id, fields in batch.items():
                self._pending[session_id] = {**fields, **self._pending.get(session_id, {})}
            raise

    # ------------------------------------------------------------------ the channel

    def _cooldown_set(self, key: str, until: float) -> None:
        if self.up:
            self._spawn(self._publish(f"{self.tag}|c|{until!r}|{key}"))

    async def _publish(self, message: str) -> None:
        try:
            await self._redis.publish(self.channel, message)
        except self._errors as exc:
            self._failed(exc)

    async def _listen_loop(self) -> None:
        while True:
            try:
                await self._listen()
            except self._errors as exc:
                self._failed(exc)
            await asyncio.sleep(_RESUBSCRIBE_S)

    async def _listen(self) -> None:
        async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(self.channel)
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is None:
                    continue
                try:
                    self.on_message(message["data"])
                except (ValueError, TypeError, KeyError, AttributeError):
                    # Anyone may publish on the channel: a message not ours must not stop the listener.
                    log.debug("shared state: a malformed message on %s ignored", self.channel)

    def on_message(self, data: bytes) -> None:
        """One message of another instance on the channel."""
        tag, kind, rest = data.split(b"|", 2)
        if tag.decode() == self.tag:
            return
        if kind == b"s" and self._sessions is not None:
            for session_id, fields in orjson.loads(rest).items():
                self._sessions.apply(session_id, fields.get("r"), fields.get("i"))
        elif kind == b"c":
            until, key = rest.decode().split("|", 1)
            self.windows.note_cooldown(key, float(until))
        elif kind == b"b" and self._live is not None:
            key, at, state, reason, _ = rest.decode().split("|", 4)
            self._live.apply_breaker(key, state, float(at), reason)  # type: ignore[arg-type]
