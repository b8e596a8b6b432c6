"""Managed keys and the audit trail on both backends: records round trip, every write takes the next
rev, and the change feed misses no write of any instance sharing the database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from ccrouter.auth.keys import AuditRecord, KeyRecord, hash_secret
from ccrouter.errors import RequestError
from ccrouter.store.base import Store

Factory = Callable[[], Store]
T0 = 1_790_000_000.0


def key(n: int, **fields: object) -> KeyRecord:
    values: dict[str, object] = {
        "id": f"key_{n:04d}",
        "name": f"laptop {n}",
        "hash": hash_secret(f"secret-{n}"),
        "prefix": "ccr-AbCd",
        "created_at": T0 + n,
        **fields,
    }
    return KeyRecord(**values)  # type: ignore[arg-type]


@pytest.fixture
async def pair(make_store: Factory) -> AsyncIterator[tuple[Store, Store]]:
    """Two instances on one database."""
    a, b = make_store(), make_store()
    await a.open()
    await b.open()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_a_key_round_trips_with_every_field(pair: tuple[Store, Store]) -> None:
    a, b = pair
    full = key(
        1,
        role="operator",
        user="ana",
        team="platform",
        models=("anthropic,*", "gpt-4o-mini", "é✓"),
        rpm=60,
        tpm=9_007_199_254_740_993,
        budget_usd=12.5,
        budget_period="weekly",
        created_by="cli:root",
        expires_at=T0 + 86400.25,
        revoked_at=T0 + 10,
        previous_hash=hash_secret("old"),
        previous_until=T0 + 3600,
        last_used_at=T0 + 5,
    )
    plain = key(2)
    stored = await a.key_insert(full)
    assert stored == full.with_changes(rev=1)
    assert await a.key_insert(plain) == plain.with_changes(rev=2)
    assert await b.key_get(full.id) == stored
    assert await b.key_get("key_missing") is None
    assert await b.key_list() == [stored, plain.with_changes(rev=2)]
    # An empty list of models (none allowed) is not None (any model).
    none_allowed = await a.key_insert(key(3, models=()))
    assert (await b.key_get(none_allowed.id)) == none_allowed
    assert none_allowed.models == ()


async def test_a_duplicate_id_or_hash_is_refused(pair: tuple[Store, Store]) -> None:
    a, b = pair
    first = await a.key_insert(key(1))
    with pytest.raises(RequestError, match="already exists"):
        await b.key_insert(key(2, hash=first.hash))
    with pytest.raises(RequestError, match="already exists"):
        await b.key_insert(key(3, id=first.id))
    second = await b.key_insert(key(4))
    assert second.rev == 2  # the refused writes took no rev
    with pytest.raises(RequestError, match="already exists"):
        await a.key_update(second.id, {"hash": first.hash})
    assert await a.key_list() == [first, second]


async def test_update_sets_fields_and_takes_the_next_rev(pair: tuple[Store, Store]) -> None:
    a, b = pair
    first = await a.key_insert(key(1))
    await a.key_insert(key(2))
    updated = await b.key_update(
        first.id, {"name": "renamed", "models": ("m1",), "user": "bo", "revoked_at": T0 + 99}
    )
    assert updated == first.with_changes(name="renamed", models=("m1",), user="bo", revoked_at=T0 + 99, rev=3)
    assert await a.key_get(first.id) == updated
    cleared = await a.key_update(first.id, {"models": None, "user": None})
    assert cleared is not None
    assert (cleared.models, cleared.user, cleared.rev) == (None, None, 4)
    assert await a.key_update("key_missing", {"name": "x"}) is None
    with pytest.raises(RequestError, match="models"):
        await a.key_update(first.id, {"models": "m1"})  # a name, not a list of them
    for field in ("rev", "id", "nonsense"):
        with pytest.raises(RequestError, match="cannot be set"):
            await a.key_update(first.id, {field: 7})
    assert await b.key_get(first.id) == cleared


async def test_changes_of_one_instance_reach_the_other(pair: tuple[Store, Store]) -> None:
    a, b = pair
    assert await b.key_changes(0) == (0, [])
    one = await a.key_insert(key(1))
    two = await a.key_insert(key(2))
    rev, rows = await b.key_changes(0)
    assert (rev, rows) == (2, [one, two])
    assert await b.key_changes(rev) == (2, [])
    revoked = await b.key_update(one.id, {"revoked_at": T0 + 50})
    assert await a.key_changes(rev) == (3, [revoked])
    # Recording use is not a change other instances must see.
    await a.key_touch({two.id: T0 + 60})
    assert await b.key_changes(3) == (3, [])


async def test_concurrent_writers_never_leave_a_rev_behind_the_feed(pair: tuple[Store, Store]) -> None:
    a, b = pair
    seen: dict[str, int] = {}
    since = 0
    done = asyncio.Event()

    async def follow() -> None:
        nonlocal since
        while True:
            finished = done.is_set()
            rev, rows = await (a if since % 2 else b).key_changes(since)
            assert rev >= since
            for row in rows:
                assert since < row.rev <= rev
                seen[row.id] = row.rev
            since = rev
            if finished:
                return
            await asyncio.sleep(0)

    async def write(store: Store, first: int) -> list[int]:
        revs = []
        for n in range(first, first + 15):
            revs.append((await store.key_insert(key(n))).rev)
            if n % 3 == 0 and n >= first + 2:
                updated = await store.key_update(f"key_{n - 2:04d}", {"rpm": n})
                assert updated is not None
                revs.append(updated.rev)
        return revs

    follower = asyncio.create_task(follow())
    written = await asyncio.gather(write(a, 0), write(b, 100), write(a, 200), write(b, 300))
    done.set()
    await follower
    revs = sorted(rev for batch in written for rev in batch)
    assert revs == list(range(1, len(revs) + 1))  # each write its own rev, none lost
    final = {record.id: record.rev for record in await a.key_list()}
    # The follower, which only ever asked for rows after the highest rev it had seen, has every
    # key at its latest rev: no write committed with a rev below one already reported.
    assert seen == final
    assert since == len(revs)


async def test_touch_keeps_the_latest_use_only(pair: tuple[Store, Store]) -> None:
    a, b = pair
    one = await a.key_insert(key(1))
    two = await a.key_insert(key(2, last_used_at=T0 + 100))
    await b.key_touch({one.id: T0 + 10, two.id: T0 + 50, "key_missing": T0})
    await a.key_touch({one.id: T0 + 5})  # an earlier use reported late changes nothing
    await a.key_touch({})
    got = {record.id: (record.last_used_at, record.rev) for record in await b.key_list()}
    assert got == {one.id: (T0 + 10, 1), two.id: (T0 + 100, 2)}


def audit(n: int, action: str, actor: str = "admin", **fields: object) -> AuditRecord:
    return AuditRecord(ts=T0 + n, actor=actor, action=action, outcome="ok", **fields)  # type: ignore[arg-type]


async def test_audit_rows_filtered_newest_first(pair: tuple[Store, Store]) -> None:
    a, b = pair
    await a.audit_add(
        [
            audit(1, "key.created", target="key_0001", detail={"name": "laptop", "role": "client"}),
            audit(2, "key.revoked", actor="jwt:ana", target="key_0001", address="10.0.0.7"),
            audit(3, "auth.failed", actor="anonymous", address="127.0.0.1"),
        ]
    )
    await b.audit_add([audit(4, "key.rotated", detail={"é": [1, 2.5, None]}), audit(5, "keyXrotated")])
    await b.audit_add([])
    rows = await b.audit_list()
    assert [row.action for row in rows] == [
        "keyXrotated",
        "key.rotated",
        "auth.failed",
        "key.revoked",
        "key.created",
    ]
    assert all(row.id is not None for row in rows)
    assert len({row.id for row in rows}) == 5
    created = rows[-1]
    assert created == audit(
        1, "key.created", target="key_0001", detail={"name": "laptop", "role": "client"}, id=created.id
    )
    assert rows[1].detail == {"é": [1, 2.5, None]}
    assert rows[3].address == "10.0.0.7"

    async def actions(**query: object) -> list[str]:
        return [row.action for row in await a.audit_list(**query)]  # type: ignore[arg-type]

    assert await actions(action="key.*") == ["key.rotated", "key.revoked", "key.created"]
    assert await actions(action="key.revoked") == ["key.revoked"]
    assert await actions(action="key") == []
    assert await actions(action="k%*") == []  # a prefix, not a LIKE pattern
    assert await actions(action="*") == await actions()
    assert await actions(actor="jwt:ana") == ["key.revoked"]
    assert await actions(since=T0 + 2, until=T0 + 4) == ["auth.failed", "key.revoked"]
    assert await actions(action="key.*", since=T0 + 2, limit=1) == ["key.rotated"]
    assert await actions(limit=2) == ["keyXrotated", "key.rotated"]
    for limit in (0, -1, 10_001):
        with pytest.raises(RequestError, match="limit"):
            await a.audit_list(limit=limit)
