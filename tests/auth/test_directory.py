"""The key directory against real stores (SQLite, PostgreSQL) and a real Redis: lookups, what each
status means, and changes made on one instance reaching another within the 2 s the issue allows."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Protocol

import pytest
import redis
import redis.asyncio
from pydantic import SecretStr
from redis.driver_info import DriverInfo

from ccrouter.auth.directory import KeyDirectory, announce, channel
from ccrouter.auth.keys import KeyRecord, hash_secret, new_key_id, new_secret
from ccrouter.config import KeysConfig
from ccrouter.store.base import Store

T0 = 1_800_000_000.0
GRACE = 3600.0

MakeStore = Callable[[], Store]


class Database(Protocol):
    """``make_store`` (tests/auth/conftest.py): stores sharing one database, and raw SQL on it."""

    def __call__(self) -> Store: ...

    async def execute(self, sql: str) -> None: ...


def _key(**fields: object) -> tuple[str, KeyRecord]:
    secret = new_secret()
    record = KeyRecord(
        id=new_key_id(),
        name=str(fields.pop("name", "laptop")),
        hash=hash_secret(secret),
        prefix=secret[:8],
        created_at=time.time(),
        **fields,  # type: ignore[arg-type]
    )
    return secret, record


def _status(directory: KeyDirectory, secret: str, now: float) -> str | None:
    match = directory.lookup(secret, now)
    return match.status if match is not None else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _eventually(check: Callable[[], bool], within: float, what: str) -> float:
    """Seconds until ``check()`` holds; fails the test past ``within``."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not check():
        if loop.time() - start > within:
            pytest.fail(f"{what}: not within {within}s")
        await asyncio.sleep(0.01)
    return loop.time() - start


async def _subscribers(client: redis.asyncio.Redis, prefix: str) -> int:
    counts = await client.pubsub_numsub(channel(prefix))
    return int(counts[0][1])


async def _wait_subscribed(client: redis.asyncio.Redis, prefix: str, n: int, within: float) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while await _subscribers(client, prefix) < n:
        if loop.time() - start > within:
            pytest.fail(f"{n} directories not subscribed within {within}s")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def _instance(
    make_store: MakeStore,
    config: KeysConfig | None = None,
    *,
    redis_url: str | None = None,
    prefix: str = "ccrouter",
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[tuple[Store, KeyDirectory]]:
    """One gateway instance's share: its own store connection and key directory."""
    store = make_store()
    await store.open()
    directory = KeyDirectory(
        store,
        config or KeysConfig(),
        redis_url=SecretStr(redis_url) if redis_url is not None else None,
        prefix=prefix,
        clock=clock,
    )
    try:
        await directory.start()
        yield store, directory
    finally:
        await directory.aclose()
        await store.close()


async def test_lookup_answers_from_the_replica(make_store: MakeStore) -> None:
    async with _instance(make_store) as (store, directory):
        secret, record = _key(role="viewer", user="ann", team="core", rpm=60)
        other_secret, other = _key(name="ci")
        await store.key_insert(record)
        await store.key_insert(other)
        await directory.changed()

        match = directory.lookup(secret, T0)
        assert match is not None
        assert (match.status, match.record.id) == ("active", record.id)
        principal = match.principal
        assert (principal.kind, principal.id, principal.role) == ("key", record.id, "viewer")
        assert (principal.user, principal.team, principal.rpm) == ("ann", "core", 60)
        # Answers are made once per record: a lookup hands out the same object.
        assert directory.lookup(secret, T0 + 1) is match
        assert _status(directory, other_secret, T0) == "active"

        assert directory.lookup(new_secret(), T0) is None  # well formed, but no such key
        assert len(directory) == 2
        assert [r.id for r in directory.records()] == [record.id, other.id]
        assert directory.get(record.id) == match.record
        assert directory.get("key_0000000000000000") is None


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "ccr-",
        "Bearer ccr-",
        "sk-ant-api03-" + "a" * 80,
        "x" * 100_000,
        "ccr-" + "A" * 44,  # one character too many
        "ccr-" + "A" * 42,  # one too few
        "ccr-" + "\udcff" * 43,  # undecodable bytes, as a header may carry them
        "ccr-" + "é" * 43,
    ],
)
async def test_junk_and_oversized_input_is_refused(make_store: MakeStore, presented: str) -> None:
    async with _instance(make_store) as (store, directory):
        _, record = _key()
        await store.key_insert(record)
        await directory.changed()
        assert directory.lookup(presented, T0) is None
        assert len(directory) == 1


async def test_a_secret_with_a_character_added_or_changed_is_refused(make_store: MakeStore) -> None:
    async with _instance(make_store) as (store, directory):
        secret, record = _key()
        await store.key_insert(record)
        await directory.changed()
        assert directory.lookup(secret, T0) is not None
        assert directory.lookup(secret + "A", T0) is None
        assert directory.lookup(secret[:-1], T0) is None
        flipped = secret[:-1] + ("B" if secret[-1] != "B" else "C")
        assert directory.lookup(flipped, T0) is None


async def test_rotated_secret_works_during_the_grace_period_only(make_store: MakeStore) -> None:
    async with _instance(make_store) as (store, directory):
        old, record = _key()
        await store.key_insert(record)
        await directory.changed()
        new = new_secret()
        await store.key_update(
            record.id,
            {
                "hash": hash_secret(new),
                "prefix": new[:8],
                "previous_hash": record.hash,
                "previous_until": T0 + GRACE,
            },
        )
        await directory.changed()

        during, after = T0 + GRACE - 1, T0 + GRACE
        assert [_status(directory, new, t) for t in (during, after)] == ["active", "active"]
        assert [_status(directory, old, t) for t in (during, after)] == ["active", "rotated"]
        old_match = directory.lookup(old, during)
        assert old_match is not None
        assert old_match.record.id == record.id
        assert len(directory) == 1

        # Rotated again: the first secret is forgotten, the second becomes the previous one.
        newest = new_secret()
        await store.key_update(
            record.id,
            {
                "hash": hash_secret(newest),
                "prefix": newest[:8],
                "previous_hash": hash_secret(new),
                "previous_until": T0 + 2 * GRACE,
            },
        )
        await directory.changed()
        assert directory.lookup(old, during) is None
        assert _status(directory, new, T0 + GRACE) == "active"
        assert _status(directory, new, T0 + 2 * GRACE) == "rotated"
        assert _status(directory, newest, T0 + 3 * GRACE) == "active"


async def test_revoked_and_expired_keys_stay_and_say_so(make_store: MakeStore) -> None:
    async with _instance(make_store) as (store, directory):
        expiring_secret, expiring = _key(expires_at=T0 + 60)
        revoked_secret, revoked = _key()
        await store.key_insert(expiring)
        await store.key_insert(revoked)
        await store.key_update(revoked.id, {"revoked_at": T0 - 1})
        await directory.changed()

        assert _status(directory, expiring_secret, T0) == "active"
        assert _status(directory, expiring_secret, T0 + 60) == "expired"
        match = directory.lookup(expiring_secret, T0)
        assert match is not None
        assert match.principal.expires_at == T0 + 60
        assert _status(directory, revoked_secret, T0) == "revoked"
        assert _status(directory, revoked_secret, T0 - 2) == "active"  # revoked from its time on
        assert {r.id for r in directory.records()} == {expiring.id, revoked.id}


@pytest.mark.parametrize("transport", ["redis", "poll"])
async def test_a_change_on_one_instance_reaches_the_other(
    make_store: MakeStore,
    redis_url: str,
    redis_prefix: str,
    redis_client: redis.asyncio.Redis,
    transport: str,
) -> None:
    """Inserted, revoked and rotated through instance A, seen by instance B: within 2 s by polling;
    with Redis at once, although B would poll only once a minute."""
    if transport == "redis":
        config, url, bound = KeysConfig(poll_s=60), redis_url, 1.0
    else:
        config, url, bound = KeysConfig(poll_s=0.5), None, 2.0
    async with AsyncExitStack() as stack:
        store_a, a = await stack.enter_async_context(
            _instance(make_store, config, redis_url=url, prefix=redis_prefix)
        )
        _, b = await stack.enter_async_context(
            _instance(make_store, config, redis_url=url, prefix=redis_prefix)
        )
        if url is not None:
            await _wait_subscribed(redis_client, redis_prefix, 2, within=2.0)

        def status_on_b(secret: str) -> str | None:
            return _status(b, secret, time.time())

        secret, record = _key()
        await store_a.key_insert(record)
        await a.changed()
        await _eventually(lambda: status_on_b(secret) == "active", bound, "insert seen by B")

        new = new_secret()
        await store_a.key_update(
            record.id,
            {
                "hash": hash_secret(new),
                "prefix": new[:8],
                "previous_hash": record.hash,
                "previous_until": time.time() + GRACE,
            },
        )
        await a.changed()
        await _eventually(lambda: status_on_b(new) == "active", bound, "rotation seen by B")
        assert status_on_b(secret) == "active"  # the old secret, in its grace period

        await store_a.key_update(record.id, {"revoked_at": time.time()})
        await a.changed()
        await _eventually(lambda: status_on_b(new) == "revoked", bound, "revocation seen by B")
        assert status_on_b(secret) == "revoked"
        assert _status(a, new, time.time()) == "revoked"


async def test_without_redis_the_store_is_polled(
    make_store: MakeStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis configured but away (nothing listens on its port): lookups and writes keep working,
    changes arrive by polling, and the outage is logged once per instance, not per attempt."""
    dead = f"redis://127.0.0.1:{_free_port()}/0"
    config = KeysConfig(poll_s=0.2)
    caplog.set_level(logging.WARNING, logger="ccrouter.keys")
    async with AsyncExitStack() as stack:
        store_a, a = await stack.enter_async_context(_instance(make_store, config, redis_url=dead))
        _, b = await stack.enter_async_context(_instance(make_store, config, redis_url=dead))
        for _ in range(3):
            secret, record = _key()
            await store_a.key_insert(record)
            loop = asyncio.get_running_loop()
            start = loop.time()
            await a.changed()  # the announcement fails; the writer is not held up by it
            assert loop.time() - start < 1.0
            assert a.lookup(secret, time.time()) is not None
            await _eventually(lambda s=secret: b.lookup(s, time.time()) is not None, 2.0, "seen by B")
    outages = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(outages) == 2, [r.getMessage() for r in outages]
    assert all(dead not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("make_store", ["sqlite"], indirect=True)
async def test_an_outage_is_logged_once_a_minute(
    make_store: MakeStore, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"redis://127.0.0.1:{_free_port()}/0"
    now = [T0]
    caplog.set_level(logging.WARNING, logger="ccrouter.keys")

    def outages() -> int:
        return len([r for r in caplog.records if "Redis unreachable" in r.getMessage()])

    async with _instance(make_store, redis_url=dead, clock=lambda: now[0]) as (_, directory):
        await _eventually(lambda: outages() == 1, 2.0, "the outage logged")
        await directory.changed()
        now[0] += 59
        await directory.changed()
        assert outages() == 1
        now[0] += 1
        await directory.changed()
        assert outages() == 2


@asynccontextmanager
async def _redis_server(port: int) -> AsyncIterator[asyncio.subprocess.Process]:
    """A Redis server of the test's own (so it can be stopped), answering PING."""
    process = await asyncio.create_subprocess_exec(
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        stdout=subprocess.DEVNULL,
    )
    client = redis.asyncio.from_url(
        f"redis://127.0.0.1:{port}/0", driver_info=DriverInfo(lib_version=redis.__version__)
    )
    try:
        for _ in range(200):
            try:
                await client.ping()
                break
            except (redis.ConnectionError, OSError):
                await asyncio.sleep(0.02)
        else:
            pytest.fail("the test's redis-server did not start")
        yield process
    finally:
        await client.aclose()
        if process.returncode is None:
            process.terminate()
            await process.wait()


@pytest.mark.parametrize("make_store", ["sqlite"], indirect=True)
async def test_resubscribes_when_redis_is_back_and_polls_when_it_goes(make_store: MakeStore) -> None:
    """B polls often, C once a minute. While Redis is away B sees changes by polling, C not yet;
    once Redis is back both subscribe again, C catches up at once, and changes arrive by pub/sub;
    when it goes again, B is back to polling."""
    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0"
    fast, slow = KeysConfig(poll_s=0.3), KeysConfig(poll_s=60)
    async with AsyncExitStack() as stack:
        store_a, a = await stack.enter_async_context(_instance(make_store, fast, redis_url=url))
        _, b = await stack.enter_async_context(_instance(make_store, fast, redis_url=url))
        _, c = await stack.enter_async_context(_instance(make_store, slow, redis_url=url))

        async def change() -> str:
            secret, record = _key()
            await store_a.key_insert(record)
            await a.changed()
            return secret

        def seen(directory: KeyDirectory, secret: str) -> bool:
            return directory.lookup(secret, time.time()) is not None

        first = await change()  # Redis never was
        await _eventually(lambda: seen(b, first), 2.0, "seen by B, polling")
        assert not seen(c, first)
        async with _redis_server(port) as server:
            client = redis.asyncio.from_url(url, driver_info=DriverInfo(lib_version=redis.__version__))
            stack.push_async_callback(client.aclose)
            await _wait_subscribed(client, "ccrouter", 3, within=8.0)
            # Subscribed again, C refreshes at once: what changed while Redis was away is not lost.
            await _eventually(lambda: seen(c, first), 1.0, "missed change caught up by C")
            second = await change()
            await _eventually(lambda: seen(b, second) and seen(c, second), 1.0, "seen by pub/sub")
            server.terminate()
            await server.wait()
        third = await change()
        await _eventually(lambda: seen(b, third), 2.0, "seen by B, polling again")


async def test_announce_tells_subscribed_instances(
    make_store: MakeStore, redis_url: str, redis_prefix: str, redis_client: redis.asyncio.Redis
) -> None:
    """The CLI writes the store directly, then announces: instances refresh at once."""
    config = KeysConfig(poll_s=60)
    async with _instance(make_store, config, redis_url=redis_url, prefix=redis_prefix) as (_, directory):
        await _wait_subscribed(redis_client, redis_prefix, 1, within=2.0)
        cli_store = make_store()
        await cli_store.open()
        try:
            secret, record = _key()
            await cli_store.key_insert(record)
        finally:
            await cli_store.close()
        assert await announce(SecretStr(redis_url), redis_prefix) is True
        await _eventually(lambda: directory.lookup(secret, T0) is not None, 1.0, "announced key")
    assert await announce(f"redis://127.0.0.1:{_free_port()}/0", redis_prefix) is False


async def test_last_use_is_flushed_to_the_store(make_store: MakeStore) -> None:
    async with AsyncExitStack() as stack:
        store, directory = await stack.enter_async_context(
            _instance(make_store, KeysConfig(last_used_flush_s=0.1))
        )
        _, record = _key()
        _, stale = _key(last_used_at=T0 + 100)
        await store.key_insert(record)
        await store.key_insert(stale)
        await directory.changed()

        assert directory.last_used(record.id) is None
        directory.used(record.id, T0 + 5)
        directory.used(record.id, T0 + 3)  # an earlier use noted later changes nothing
        directory.used("key_0000000000000000", T0)  # not a key: not remembered
        assert directory.last_used(record.id) == T0 + 5
        assert directory.last_used("key_0000000000000000") is None
        directory.used(stale.id, T0 + 50)
        assert directory.last_used(stale.id) == T0 + 100  # the store knows of a later use

        for _ in range(200):
            stored = await store.key_get(record.id)
            if stored is not None and stored.last_used_at == T0 + 5:
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("last use not flushed to the store")

        # The last uses still in memory are written when the directory closes.
        async with _instance(make_store, KeysConfig(last_used_flush_s=3600)) as (_, other):
            other.used(record.id, T0 + 9)
        stored = await store.key_get(record.id)
        assert stored is not None
        assert stored.last_used_at == T0 + 9


async def test_aclose_stops_its_tasks(make_store: MakeStore, redis_url: str, redis_prefix: str) -> None:
    async with _instance(make_store, redis_url=redis_url, prefix=redis_prefix) as (_, directory):
        names = {t.get_name() for t in asyncio.all_tasks()}
        assert {"keys-poll", "keys-subscribe", "keys-last-used"} <= names
        await directory.aclose()
        names = {t.get_name() for t in asyncio.all_tasks()}
        assert not names & {"keys-poll", "keys-subscribe", "keys-last-used"}


async def test_a_store_failure_keeps_the_last_keys(
    make_store: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """The key table is taken away: lookups go on from the replica, the failures are logged once,
    the last uses wait in memory; once it is back, changes and last uses flow again."""
    caplog.set_level(logging.WARNING, logger="ccrouter.keys")
    config = KeysConfig(poll_s=0.05, last_used_flush_s=0.05)
    async with _instance(make_store, config) as (store, directory):
        secret, record = _key()
        await store.key_insert(record)
        await directory.changed()

        await make_store.execute("ALTER TABLE client_keys RENAME TO client_keys_away")
        directory.used(record.id, T0 + 7)
        await asyncio.sleep(0.5)  # about ten failed polls and flushes
        await directory.changed()  # the writer's refresh fails too, without raising
        assert _status(directory, secret, T0) == "active"
        assert len(directory) == 1
        messages = [r.getMessage() for r in caplog.records]
        assert len([m for m in messages if "store cannot be read" in m]) == 1, messages
        assert len([m for m in messages if "last-use times not written" in m]) == 1, messages

        await make_store.execute("ALTER TABLE client_keys_away RENAME TO client_keys")
        later_secret, later = _key()
        await store.key_insert(later)
        await _eventually(lambda: directory.lookup(later_secret, T0) is not None, 2.0, "key after recovery")
        for _ in range(200):
            stored = await store.key_get(record.id)
            if stored is not None and stored.last_used_at == T0 + 7:
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the last use kept in memory was not written once the store was back")
