"""The rollups on both ledger backends: reports and budget windows read from them equal the raw
rows' answers exactly (random rows, random ranges with partial hours, every group), the migration
fills them from an existing ledger, concurrent writers keep them exact, and a sum past 64 bits turns
them off rather than losing rows."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

from ccrouter.store import GROUPS, UsageQuery, UsageRecord, Window
from ccrouter.store.base import SqlBuilder, Store, group_rows
from ccrouter.store.postgres import PostgresStore
from ccrouter.store.rollups import ROLLUPS, Rollup, segments
from ccrouter.store.sqlite import SQLiteStore

Factory = Callable[[], Store]
HOUR, DAY = 3600.0, 86_400.0
START = 1_795_000_000.0 - 1_795_000_000.0 % DAY  # a UTC midnight


def rows(count: int, rng: random.Random, *, span: float = 3 * DAY) -> list[UsageRecord]:
    def pick(*values: str | None) -> str | None:
        return rng.choice(values)

    out = []
    for n in range(count):
        # Some rows sit exactly on bucket edges, where an off-by-one would show.
        ts = START + (rng.randrange(int(span / HOUR)) * HOUR if n % 17 == 0 else rng.random() * span)
        out.append(
            UsageRecord(
                ts=ts,
                request_id=f"r{n}",
                endpoint=rng.choice(("messages", "chat_completions")),
                status=rng.choice((200, 200, 200, 429, 500)),
                error_type=pick(None, None, "overloaded"),
                session_id=pick(None, "s1", "s2", "s3", f"s{n % 40}"),
                client_key_id=pick(None, "k1", "k2", "k3"),
                user_name=pick(None, "alice", "bob", ""),
                team=pick(None, "red", "blue"),
                scenario=pick(None, "default", "think"),
                provider=pick(None, "anthropic", "openai"),
                model=pick(None, "sonnet", "gpt"),
                project=pick(None, "p1", "p2"),
                profile=pick(None, "work"),
                subagent=rng.random() < 0.3,
                input_tokens=rng.randrange(10_000),
                output_tokens=rng.randrange(1000),
                cache_read_tokens=rng.randrange(500),
                cache_write_tokens=rng.randrange(50),
                estimated=rng.random() < 0.2,
                cost_picos=None if rng.random() < 0.1 else rng.randrange(10**9),
            )
        )
    return out


async def fetch(store: Store, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """Run a statement on the store's own connection (the raw-row answer to compare with)."""
    if isinstance(store, SQLiteStore):
        found = await store._run(lambda: store._conn().execute(sql, params).fetchall())
        return [tuple(row) for row in found]
    assert isinstance(store, PostgresStore)
    async with store._acquire() as conn:
        return [tuple(row) for row in await conn.fetch(sql, *params)]


async def execute(store: Store, *statements: str) -> None:
    for statement in statements:
        await fetch(store, statement, [])


def normal(found: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    # PostgreSQL sums are numeric (Decimal) where a raw COUNT is an integer: compare values.
    return [tuple(int(v) if isinstance(v, Decimal) else v for v in row) for row in found]


async def contents(store: Store, table: str) -> list[tuple[Any, ...]]:
    return sorted(
        normal(await fetch(store, f"SELECT * FROM {table}", [])), key=lambda row: (row[0], row[-10])
    )


async def raw_report(store: Store, query: UsageQuery) -> list[tuple[Any, ...]]:
    sql, params = SqlBuilder(store.dialect).report(query, rollups=False)
    return normal(await fetch(store, sql, params))


async def rolled_report(store: Store, query: UsageQuery) -> list[tuple[Any, ...]]:
    sql, params = SqlBuilder(store.dialect).report(query)
    return normal(await fetch(store, sql, params))


def ranges(rng: random.Random) -> list[tuple[float | None, float | None]]:
    out: list[tuple[float | None, float | None]] = [
        (None, None),
        (START, START + 3 * DAY),  # whole days
        (START + HOUR, START + 5 * HOUR),  # whole hours
        (START + 100.5, START + DAY + 7 * HOUR + 0.25),  # partial hours on both edges
        (START + 10, START + 20),  # inside one hour
        (START + DAY, START + DAY),  # empty
        (START + 2 * DAY, START + DAY),  # backwards: empty
        (START + 5 * DAY, None),  # after every row
        (None, START + DAY + 0.5),
        (START + 1.5 * HOUR, None),
    ]
    for _ in range(6):
        a, b = sorted(START - HOUR + rng.random() * 4 * DAY for _ in range(2))
        out.append((a, b))
    return out


GROUPINGS: list[tuple[str, ...]] = [
    (),
    *((name,) for name in GROUPS),
    ("day", "provider"),
    ("day", "session"),
    ("key", "model"),
    ("provider", "model", "subagent"),
]


async def test_rollups_answer_every_report_as_the_raw_rows_do(make_store: Factory) -> None:
    rng = random.Random(15)
    store = make_store()
    await store.open()
    try:
        for row in rows(1500, rng):
            store.add(row)
        await store.flush()
        used = set()
        for since, until in ranges(rng):
            for by in GROUPINGS:
                for limit in (None, 3) if by else (None,):
                    query = UsageQuery(by=by, since=since, until=until, limit=limit)
                    expected = await raw_report(store, query)
                    assert await rolled_report(store, query) == expected, query
                    assert await store.report(query) == group_rows(by, expected)
                    sql, _ = SqlBuilder(store.dialect).report(query)
                    used |= {rollup.table for rollup in ROLLUPS if rollup.table in sql}
        assert used == {rollup.table for rollup in ROLLUPS}  # each rollup answered some query
    finally:
        await store.close()


async def test_a_report_kept_to_some_values_equals_the_whole_report_filtered(make_store: Factory) -> None:
    """``among`` (the Costs page's top values over time) and ``limit`` (its top values, ranked in a
    first step on spend alone) agree with the unfiltered, unlimited report."""
    rng = random.Random(17)
    store = make_store()
    await store.open()
    try:
        for row in rows(1200, rng):
            store.add(row)
        await store.flush()
        picks: list[tuple[str, tuple[str | bool | None, ...]]] = [
            ("session", ("s1", None, "s7", "missing")),
            ("key", ("k2",)),
            ("user", ("",)),  # an empty name is a value, not "none"
            ("subagent", (True,)),
            ("model", ()),  # no value at all: nothing
        ]
        for since, until in [(None, None), (START + 100.5, START + 2 * DAY + 0.25), (START + DAY, None)]:
            for name, values in picks:
                shown = {
                    ({True: "true", False: "false"}.get(v, v) if isinstance(v, bool) else v) for v in values
                }
                for by in ((name,), ("day", name), ("hour", name), ("provider", name)):
                    whole = await store.report(UsageQuery(by=by, since=since, until=until))
                    kept = [row for row in whole if row.groups[name] in shown]
                    query = UsageQuery(by=by, since=since, until=until, among=((name, values),))
                    assert await store.report(query) == kept, query
                    assert await raw_report(store, query) == await rolled_report(store, query)
                    top = sorted(kept, key=lambda r: (-r.cost_picos, *(str(r.groups[g]) for g in by)))
                    limited = await store.report(replace(query, limit=2))
                    assert [r.cost_picos for r in limited] == [r.cost_picos for r in top[:2]], query
                    assert all(r in kept for r in limited)
            # A filter on a group the report does not show: the sums of those rows only.
            one = await store.report(UsageQuery(since=since, until=until, among=(("key", ("k1", None)),)))
            per_key = await store.report(UsageQuery(by=("key",), since=since, until=until))
            assert one[0].cost_picos == sum(r.cost_picos for r in per_key if r.groups["key"] in ("k1", None))
    finally:
        await store.close()


async def test_budget_windows_and_spend_read_the_rollups_exactly(make_store: Factory) -> None:
    rng = random.Random(16)
    store = make_store()
    await store.open()
    try:
        written = rows(800, rng)
        for row in written:
            store.add(row)
        await store.flush()
        now = START + 3 * DAY
        for since in (START, START + 0.5 * HOUR, START + DAY + 123.25, START - DAY):
            for scope in ({}, {"client_key_id": "k1"}, {"user_name": ""}, {"team": "red", "project": "p1"}):
                window = Window(since, 10**15, False, **scope)  # type: ignore[arg-type]
                expected = sum(
                    r.cost_picos or 0
                    for r in written
                    if r.ts >= since and all(getattr(r, k) == v for k, v in scope.items())
                )
                assert await store.window_sums([window], now) == [expected]
            for group, column in (("key", "client_key_id"), ("team", "team"), ("project", "project")):
                spent: dict[str, int] = {}
                for r in written:
                    value = getattr(r, column)
                    if r.ts >= since and value is not None:
                        spent[value] = spent.get(value, 0) + (r.cost_picos or 0)
                assert await store.spend_by(group, since) == spent
    finally:
        await store.close()


async def test_the_migration_fills_the_rollups_of_an_existing_ledger(make_store: Factory) -> None:
    rng = random.Random(17)
    store = make_store()
    await store.open()
    for row in rows(600, rng):
        store.add(row)
    await store.close()
    # Back to the ledger as it was before m007: rows, no rollups.
    old = make_store()
    await old.open()
    try:
        kept = {rollup.table: await contents(old, rollup.table) for rollup in ROLLUPS}
        await execute(
            old,
            *(f"DROP TABLE {rollup.table}" for rollup in ROLLUPS),
            "DROP TABLE usage_rollups_off",
            "DROP INDEX usage_endpoint_ts",
            "DELETE FROM ccrouter_migrations WHERE name = 'm007_rollups'",
        )
    finally:
        await old.close()
    again = make_store()
    await again.open()  # applies m007: fills the rollups from the rows
    try:
        counted = await fetch(again, "SELECT SUM(requests) FROM usage_hourly_routes", [])
        assert int(counted[0][0]) == 600
        # Filled at once, each rollup holds what the writer's batch by batch upserts had made.
        assert {rollup.table: await contents(again, rollup.table) for rollup in ROLLUPS} == kept
        for by in GROUPINGS:
            query = UsageQuery(by=by, since=START + 0.5 * HOUR, until=START + 2 * DAY + 0.5 * HOUR)
            assert await rolled_report(again, query) == await raw_report(again, query)
    finally:
        await again.close()


async def test_concurrent_writers_keep_the_rollups_exact(make_store: Factory) -> None:
    rng = random.Random(18)
    first, second = make_store(), make_store()
    await asyncio.gather(first.open(), second.open())
    try:
        # The same few buckets and combinations from two instances at once: upserts on the same rows.
        written = rows(1200, rng, span=2 * HOUR)
        written = [replace(r, session_id="s1") for r in written]

        async def write(store: Store, part: list[UsageRecord]) -> None:
            for i in range(0, len(part), 25):
                for row in part[i : i + 25]:
                    store.add(row)
                await store.flush()

        await asyncio.gather(write(first, written[::2]), write(second, written[1::2]))
        for by in GROUPINGS:
            query = UsageQuery(by=by, since=START, until=START + 2 * HOUR)
            assert await rolled_report(first, query) == await raw_report(first, query)
        total = await first.report(UsageQuery(since=START))
        assert total[0].requests == 1200
        assert total[0].cost_picos == sum(r.cost_picos or 0 for r in written)
    finally:
        await first.close()
        await second.close()


async def test_a_sum_past_64_bits_turns_the_rollups_off_and_keeps_every_row(make_store: Factory) -> None:
    store = make_store()
    await store.open()
    try:
        base = UsageRecord(ts=START + 10, request_id="", endpoint="messages", status=200)
        for n in range(4):
            store.add(
                replace(base, request_id=f"r{n}", ts=START + 10 + n, session_id=f"s{n}", cost_picos=2**62)
            )
        await store.flush()
        assert len(await store.records()) == 4
        off = await fetch(store, "SELECT COUNT(*) FROM usage_rollups_off", [])
        assert int(off[0][0]) == 1
        sessions = await store.report(UsageQuery(by=("session",), since=START))
        assert [(r.groups["session"], r.cost_picos) for r in sessions] == [(f"s{n}", 2**62) for n in range(4)]
        store.add(base)  # later rows are written, and reports still read the raw rows
        await store.flush()
        sql, _ = SqlBuilder(store.dialect).report(UsageQuery(since=START))
        assert "usage_daily_routes" in sql  # the rollups would answer, were they on
        found = await store.report(UsageQuery(by=("session",), since=START))
        assert {r.groups["session"]: r.requests for r in found} == {
            None: 1,
            "s0": 1,
            "s1": 1,
            "s2": 1,
            "s3": 1,
        }
    finally:
        await store.close()


def test_segments_cover_a_range_once_widest_buckets_first() -> None:
    daily, hourly = Rollup("d", 86_400, ()), Rollup("h", 3600, ())
    pieces = segments(START + 100, START + 2 * DAY + 3 * HOUR + 5, [daily, hourly])
    assert [(p.rollup and p.rollup.table, p.since, p.until) for p in pieces] == [
        (None, START + 100, START + HOUR),
        ("h", START + HOUR, START + DAY),
        ("d", START + DAY, START + 2 * DAY),
        ("h", START + 2 * DAY, START + 2 * DAY + 3 * HOUR),
        (None, START + 2 * DAY + 3 * HOUR, START + 2 * DAY + 3 * HOUR + 5),
    ]
    assert [(p.rollup, p.since, p.until) for p in segments(None, None, [daily])] == [(daily, None, None)]
    assert [(p.rollup, p.since, p.until) for p in segments(START + 10, START + 20, [daily, hourly])] == [
        (None, START + 10, START + 20)
    ]
    assert [(p.rollup, p.since) for p in segments(START + 5, START + 5, [hourly])] == [(None, START + 5)]


def test_segments_keep_a_range_a_hair_off_a_bucket_edge_raw() -> None:
    hourly = Rollup("h", 3600, ())
    edge = START + 5 * HOUR
    for since in (edge - 1e-6, edge + 1e-6, edge + 2.5e-7, edge - 2.5e-7):
        for piece in segments(since, since + 3 * HOUR, [hourly]):
            if piece.rollup is not None:
                assert piece.since is not None
                assert piece.until is not None
                assert since <= piece.since < piece.until <= since + 3 * HOUR
