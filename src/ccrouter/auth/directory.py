"""The key directory: every instance's in-memory replica of the store's managed keys.

A presented key is found with one SHA-256 and one dictionary lookup, never a store round trip, so
the replica must stay exact. It is loaded whole at start, then kept up to date with the store's
change feed (``Store.key_changes(last_rev)``: only the rows written since the last look):

- with Redis (``state.redis_url``), an instance that writes a key calls ``changed()``, which
  publishes on ``<prefix>:keys``; every subscribed instance refreshes at once (and every 30 s in
  case a message was lost);
- without Redis, or while it cannot be reached, each instance polls the store every
  ``server.keys.poll_s``; it subscribes again when Redis is back.

Either way a change is in force everywhere within the 2 s the issue allows. Revoked and expired
keys stay in the replica, so the caller can tell a revoked key from an unknown one. A failed refresh
keeps the last good replica. Last-use times are noted in memory (one dictionary write per request)
and written to the store in batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import SecretStr

from ccrouter.auth.keys import MAX_PRESENTED, KeyRecord, KeyStatus, hash_secret, looks_like_key
from ccrouter.auth.roles import Principal
from ccrouter.config import KeysConfig
from ccrouter.errors import CCRouterError
from ccrouter.store.base import Store

if TYPE_CHECKING:
    import redis.asyncio

__all__ = ["SAFETY_POLL_S", "KeyDirectory", "KeyMatch", "announce", "channel"]

log = logging.getLogger("ccrouter.keys")

# With Redis, the store is still read this often: a message lost (Redis restarted between a write
# and its announcement) delays a change by at most this much.
SAFETY_POLL_S = 30.0
# While Redis is away, how often to try subscribing again (the store is polled meanwhile).
_RESUBSCRIBE_S = 5.0
# Bounds a connection attempt to Redis, so an announcement never holds up a key's writer long.
_REDIS_TIMEOUT_S = 2.0
# A repeated failure (Redis away, store away) is logged at most this often.
_LOG_EVERY_S = 60.0
_STATUSES: tuple[KeyStatus, ...] = ("active", "revoked", "expired", "rotated")


def channel(prefix: str) -> str:
    """The pub/sub channel that announces key changes to instances sharing ``state.key_prefix``."""
    return f"{prefix}:keys"


@dataclass(frozen=True, slots=True)
class KeyMatch:
    """A presented secret that belongs to ``record``: what presenting it means now (``status``) and
    who it makes the request (``principal``, built once per record)."""

    record: KeyRecord
    status: KeyStatus
    principal: Principal


class _Entry:
    """One record with its answers made in advance: a lookup picks one, it builds nothing."""

    __slots__ = ("matches", "record")

    def __init__(self, record: KeyRecord) -> None:
        principal = record.principal()
        self.record = record
        self.matches = {status: KeyMatch(record, status, principal) for status in _STATUSES}


class _Throttle:
    """Says whether a repeated log line is due (at most one per ``every`` seconds)."""

    def __init__(self, clock: Callable[[], float], every: float = _LOG_EVERY_S) -> None:
        self._clock = clock
        self._every = every
        self._last: float | None = None

    def due(self) -> bool:
        now = self._clock()
        if self._last is not None and now - self._last < self._every:
            return False
        self._last = now
        return True


class _Replica:
    """The records by id, by current hash and by rotated-away hash; changes applied in place
    (synchronously, so a lookup never sees half of one). Refreshes never overlap and the store
    hands each key's latest version in rev order, so a version applied is never older than the one
    it replaces."""

    def __init__(self) -> None:
        self.by_id: dict[str, _Entry] = {}
        self.current: dict[str, _Entry] = {}
        self.previous: dict[str, _Entry] = {}

    def apply(self, records: Iterable[KeyRecord]) -> None:
        for record in records:
            old = self.by_id.get(record.id)
            if old is not None:
                self._unindex(old)
            entry = _Entry(record)
            self.by_id[record.id] = entry
            self.current[record.hash] = entry
            if record.previous_hash is not None:
                self.previous[record.previous_hash] = entry

    def _unindex(self, entry: _Entry) -> None:
        record = entry.record
        if self.current.get(record.hash) is entry:
            del self.current[record.hash]
        if record.previous_hash is not None and self.previous.get(record.previous_hash) is entry:
            del self.previous[record.previous_hash]


class KeyDirectory:
    """Looks presented keys up in the replica (``lookup``), notes their use (``used``), and keeps
    the replica exact (``start``, ``changed``, ``aclose``). ``clock`` paces the repeated log lines."""

    def __init__(
        self,
        store: Store,
        config: KeysConfig,
        *,
        redis_url: SecretStr | None,
        prefix: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._config = config
        self._redis_url = redis_url
        self._channel = channel(prefix)
        self._clock = clock
        self._replica = _Replica()
        self._rev = 0
        self._refresh_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._subscribed = False
        self._redis: redis.asyncio.Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # key id -> last use seen here; ``_unflushed``: the ids used since the last flush.
        self._last_used: dict[str, float] = {}
        self._unflushed: set[str] = set()
        self._redis_log = _Throttle(clock)
        self._resubscribed_log = _Throttle(clock)
        self._store_log = _Throttle(clock)
        self._flush_log = _Throttle(clock)

    # -- the hot path ---------------------------------------------------------------------------

    def lookup(self, presented: str, now: float) -> KeyMatch | None:
        """The key ``presented`` is (its current secret, or its previous one after a rotation), or
        None. Anything not shaped like a managed key is refused before it is hashed."""
        if len(presented) > MAX_PRESENTED or not looks_like_key(presented):
            return None
        digest = hash_secret(presented)
        entry = self._replica.current.get(digest)
        if entry is not None:
            return entry.matches[entry.record.status(now)]
        entry = self._replica.previous.get(digest)
        if entry is not None:
            return entry.matches[entry.record.status(now, previous=True)]
        return None

    def used(self, key_id: str, now: float) -> None:
        """Note that ``key_id`` served a request at ``now`` (written to the store in batches)."""
        if key_id not in self._replica.by_id:
            return  # only keys of the replica: the map stays as small as the key table
        if now > self._last_used.get(key_id, 0.0):
            self._last_used[key_id] = now
            self._unflushed.add(key_id)

    def last_used(self, key_id: str) -> float | None:
        """The latest use known: this instance's, or the store's when it is later."""
        entry = self._replica.by_id.get(key_id)
        stored = entry.record.last_used_at if entry is not None else None
        here = self._last_used.get(key_id)
        if here is None or (stored is not None and stored > here):
            return stored
        return here

    def get(self, key_id: str) -> KeyRecord | None:
        entry = self._replica.by_id.get(key_id)
        return entry.record if entry is not None else None

    def records(self) -> list[KeyRecord]:
        """Every key held, revoked and expired ones included, oldest first."""
        return sorted((e.record for e in self._replica.by_id.values()), key=lambda r: (r.created_at, r.id))

    def __len__(self) -> int:
        return len(self._replica.by_id)

    @property
    def rev(self) -> int:
        """The store's change counter as of the last refresh."""
        return self._rev

    # -- keeping it exact -----------------------------------------------------------------------

    async def start(self) -> None:
        """Load every key (a store failure here is raised: no gateway starts without its keys), then
        follow the changes in the background."""
        if self._tasks:
            return  # started already
        await self._refresh()
        loop = asyncio.get_running_loop()
        if self._redis_url is not None:
            self._redis = _connect(self._redis_url)
            self._tasks.append(loop.create_task(self._subscribe_loop(), name="keys-subscribe"))
        self._tasks.append(loop.create_task(self._poll_loop(), name="keys-poll"))
        self._tasks.append(loop.create_task(self._flush_loop(), name="keys-last-used"))

    async def aclose(self) -> None:
        """Stop following changes, write the last-use times still in memory, close Redis."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.flush()
        if self._redis is not None:
            client, self._redis = self._redis, None
            await client.aclose()

    async def changed(self) -> None:
        """A key was written on this instance: refresh now (so its next lookup sees the change), then
        tell the other instances (with Redis; without it they see it at their next poll)."""
        await self._refresh_logged()
        if self._redis is None:
            return
        try:
            await self._redis.publish(self._channel, str(self._rev))
        except _redis_errors() as exc:
            self._redis_unreachable(exc)

    async def flush(self) -> None:
        """Write the last-use times noted since the last flush; on failure they are kept for the next."""
        if not self._unflushed:
            return
        ids, self._unflushed = self._unflushed, set()
        written = False
        try:
            await self._store.key_touch({key_id: self._last_used[key_id] for key_id in ids})
            written = True
        except Exception as exc:  # a boundary: see ``_refresh_logged``
            if self._flush_log.due():
                log.warning("keys: last-use times not written, kept for later (%s)", _describe(exc))
        finally:
            # Kept on a failure, and on a cancellation (``aclose`` during a periodic flush), so the
            # next flush, or the final one, writes them.
            if not written:
                self._unflushed |= ids

    async def _refresh(self) -> None:
        # One refresh at a time: two overlapping ones would read the same changes twice.
        async with self._refresh_lock:
            rev, records = await self._store.key_changes(self._rev)
            self._replica.apply(records)
            self._rev = max(self._rev, rev)

    async def _refresh_logged(self) -> None:
        """Refresh; a store failure keeps the last good replica (and is logged once a minute)."""
        try:
            await self._refresh()
        except Exception as exc:
            # A boundary: the background loops must outlive any failure of the store, whose backends
            # raise their own errors (``StoreUnavailableError``, sqlite3's). A loop that died would
            # freeze the replica without a word; this one keeps it and says why.
            if self._store_log.due():
                log.warning("keys: the store cannot be read (%s); serving the last keys read", _describe(exc))

    async def _poll_loop(self) -> None:
        """Refresh every poll interval, or at once when woken (a message, Redis lost or back)."""
        while True:
            interval = SAFETY_POLL_S if self._subscribed else self._config.poll_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
            self._wake.clear()
            await self._refresh_logged()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self._config.last_used_flush_s)
            await self.flush()

    async def _subscribe_loop(self) -> None:
        """Hold a subscription to the channel; while Redis is away, leave the store to polling and
        try again every few seconds."""
        while True:
            try:
                await self._listen()
            except _redis_errors() as exc:
                self._redis_unreachable(exc)
            self._set_subscribed(False)
            await asyncio.sleep(_RESUBSCRIBE_S)

    async def _listen(self) -> None:
        assert self._redis is not None
        async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(self._channel)
            # Subscribed: a change made before now is caught by the refresh this wakes.
            self._set_subscribed(True)
            while True:
                message = await pubsub.get_message(timeout=SAFETY_POLL_S)
                if message is not None:
                    self._wake.set()

    def _set_subscribed(self, subscribed: bool) -> None:
        if subscribed == self._subscribed:
            return
        self._subscribed = subscribed
        if subscribed and self._resubscribed_log.due():
            log.info("keys: subscribed to Redis for key changes")
        self._wake.set()  # catch up now, and poll at the new pace

    def _redis_unreachable(self, exc: BaseException) -> None:
        if self._redis_log.due():
            log.warning(
                "keys: Redis unreachable (%s); polling the store every %gs until it is back",
                type(exc).__name__,
                self._config.poll_s,
            )


async def announce(redis_url: SecretStr | str, prefix: str) -> bool:
    """Tell every instance that keys changed (the CLI, after writing the store directly). Returns
    whether the message was sent; when not, instances see the change at their next poll."""
    client = _connect(redis_url)
    try:
        await client.publish(channel(prefix), "0")
    except _redis_errors() as exc:
        log.warning("keys: change not announced, Redis unreachable (%s)", type(exc).__name__)
        return False
    finally:
        await client.aclose()
    return True


def _connect(url: SecretStr | str) -> redis.asyncio.Redis:
    # Optional at import time: only needed with state.redis_url.
    import redis as redis_package
    import redis.asyncio
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.driver_info import DriverInfo

    raw = url.get_secret_value() if isinstance(url, SecretStr) else url
    client: redis.asyncio.Redis = redis.asyncio.from_url(
        raw,
        socket_connect_timeout=_REDIS_TIMEOUT_S,
        # Commands (a publish) too; the subscription's reads have their own timeout (``_listen``).
        socket_timeout=_REDIS_TIMEOUT_S,
        # No retries inside redis-py: a failure must surface at once so the store is polled instead
        # (and the subscription is remade, followed by a catch-up refresh, by ``_subscribe_loop``).
        retry=Retry(NoBackoff(), 0),
        # Told its version, redis-py does not scan the package metadata (on the loop) to connect.
        driver_info=DriverInfo(lib_version=redis_package.__version__),
    )
    return client


def _describe(exc: BaseException) -> str:
    """An error for the log: our own messages say nothing secret; a foreign one is named only (a
    driver's message may quote a connection string or a value)."""
    return f"{type(exc).__name__}: {exc}" if isinstance(exc, CCRouterError) else type(exc).__name__


def _redis_errors() -> tuple[type[BaseException], ...]:
    from redis.exceptions import RedisError

    return (RedisError, OSError)
