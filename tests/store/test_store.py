"""Both ledger backends: migrations, batched writes, flush on close, reports, budget reservations."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

from ccrouter.store import UsageQuery, UsageRecord, Window
from ccrouter.store.base import Store
from ccrouter.store.migrations import MIGRATIONS
from ccrouter.store.records import reservation_token

Factory = Callable[[], Store]
DAY1 = datetime(2026, 11, 20, 12, tzinfo=UTC).timestamp()
DAY2 = datetime(2026, 11, 21, 8, tzinfo=UTC).timestamp()


def record(n: int, **fields: object) -> UsageRecord:
    values: dict[str, object] = {
        "ts": DAY1 + n,
        "request_id": f"req-{n}",
        "endpoint": "messages",
        "status": 200,
        "provider": "up",
        "model": "m",
        "input_tokens": 10 * n,
        "output_tokens": n,
        "cost_picos": 1000 * n,
        **fields,
    }
    return UsageRecord(**values)  # type: ignore[arg-type]


async def test_rows_round_trip_and_close_flushes(make_store: Factory) -> None:
    store = make_store()
    await store.open()
    rows = [
        record(n, estimated=n % 2 == 0, fallbacks='[{"provider": "a"}]' if n == 3 else None)
        for n in range(1, 8)
    ]
    for row in rows:
        store.add(row)
    await store.close()  # no flush first: closing must commit what is queued
    again = make_store()
    await again.open()  # migrations already applied: nothing to redo
    try:
        assert await again.records() == rows
    finally:
        await again.close()


async def test_a_large_batch_keeps_every_value_exactly(make_store: Factory) -> None:
    # SQLite takes a whole batch as one JSON array: floats, 64-bit integers, None, booleans and
    # non-ASCII text must come back as they went in, in order.
    store = make_store()
    await store.open()
    rows = [
        record(
            n,
            ts=DAY1 + n / 7,
            cost_picos=None if n % 5 == 0 else 9_007_199_254_740_993 + n,
            session_id="sitzung-é✓" if n % 3 == 0 else None,
            estimated=n % 2 == 0,
            latency_ms=n * 0.1,
            fallbacks='[{"provider": "a", "error_type": "rate_limit_error"}]' if n % 4 == 0 else None,
        )
        for n in range(1, 3001)
    ]
    for row in rows:
        store.add(row)
    await store.close()
    again = make_store()
    await again.open()
    try:
        assert await again.records() == rows
    finally:
        await again.close()


async def test_migrations_are_recorded_once(make_store: Factory) -> None:
    first, second = make_store(), make_store()
    await asyncio.gather(first.open(), second.open())  # two instances starting together
    try:
        report = await first.report(UsageQuery())
        assert report[0].requests == 0
    finally:
        await first.close()
        await second.close()
    assert [m.__name__ for m in MIGRATIONS] == [
        "m001_usage",
        "m002_budget_reservations",
        "m003_usage_project",
        "m004_reservation_profile",
        "m005_keys_audit_team",
        "m006_request_log",
        "m007_rollups",
    ]


async def test_report_groups_and_ranges(make_store: Factory) -> None:
    store = make_store()
    await store.open()
    try:
        store.add(record(1, model="a", session_id="s1", client_key_id="k1"))
        store.add(record(2, model="b", session_id="s1", user_name="u"))
        store.add(record(3, model="a", session_id="s2", status=502, error_type="api_error", cost_picos=None))
        store.add(record(4, ts=DAY2, model="a", session_id="s2"))
        await store.flush()
        by_day = await store.report(UsageQuery(by=("day", "model")))
        assert [(r.groups["day"], r.groups["model"], r.requests, r.cost_picos) for r in by_day] == [
            ("2026-11-20", "a", 2, 1000),
            ("2026-11-20", "b", 1, 2000),
            ("2026-11-21", "a", 1, 4000),
        ]
        (day1,) = await store.report(UsageQuery(since=DAY1, until=DAY2))
        assert (day1.requests, day1.errors, day1.unpriced, day1.input_tokens) == (3, 1, 1, 60)
        top = await store.report(UsageQuery(by=("session",), limit=1))
        assert [(r.groups["session"], r.cost_picos) for r in top] == [("s2", 4000)]
        assert await store.spend_by("key", DAY1) == {"k1": 1000}
        assert await store.spend_by("user", DAY1) == {"u": 2000}
    finally:
        await store.close()


async def test_reservations_are_atomic_and_settled_by_the_row(make_store: Factory) -> None:
    a, b = make_store(), make_store()
    await a.open()
    await b.open()
    try:
        # Recent times: reservations older than RESERVATION_TTL_S are purged as abandoned.
        ts = time.time()
        window = Window(since=ts - 60, limit_picos=10_000, blocking=True)
        # Ten concurrent reservations of 3,000 against 10,000 on two instances: exactly three fit.
        results = await asyncio.gather(
            *(
                (a if i % 2 else b).reserve(
                    reservation_token(f"r{i}", ts), ts, [window], 3000, client_key_id=None, user_name=None
                )
                for i in range(10)
            )
        )
        admitted = [i for i, (_, ok) in enumerate(results) if ok]
        assert len(admitted) == 3
        assert await a.window_sums([window], ts) == [9000]
        # The ledger row replaces its reservation in one transaction: actual 1,000 instead of 3,000.
        a.add(
            UsageRecord(ts=ts, request_id=f"r{admitted[0]}", endpoint="messages", status=200, cost_picos=1000)
        )
        await a.flush()
        assert await b.window_sums([window], ts) == [7000]
        # A window already full refuses even a free request.
        used, ok = await b.reserve(
            "late", DAY1 + 3, [Window(DAY1, 7000, True)], 0, client_key_id=None, user_name=None
        )
        assert (used, ok) == ([7000], False)
    finally:
        await a.close()
        await b.close()


async def test_settle_lowers_or_releases_a_reservation_on_every_instance(
    make_store: Callable[[], Store],
) -> None:
    a, b = make_store(), make_store()
    await a.open()
    await b.open()
    try:
        ts = time.time()
        window = Window(since=ts - 60, limit_picos=10_000, blocking=True)
        for name in ("s1", "s2"):
            _, ok = await a.reserve(
                reservation_token(name, ts), ts, [window], 4000, client_key_id=None, user_name=None
            )
            assert ok
        assert await b.window_sums([window], ts) == [8000]
        await a.settle(reservation_token("s1", ts), 1500)  # served: its actual cost
        await b.settle(reservation_token("s2", ts), 0)  # failed: released
        assert await b.window_sums([window], ts) == [1500]
        # The ledger row still replaces the settled reservation, never adding to it.
        a.add(UsageRecord(ts=ts, request_id="s1", endpoint="messages", status=200, cost_picos=1500))
        await a.flush()
        assert await b.window_sums([window], ts) == [1500]
        await b.settle(reservation_token("s1", ts), 1500)  # after the row: nothing left to change
        assert await a.window_sums([window], ts) == [1500]
    finally:
        await a.close()
        await b.close()


async def test_session_day_sums_a_range_and_finds_the_last_served(make_store: Factory) -> None:
    store = make_store()
    await store.open()
    try:
        for row in (
            record(1, session_id="s1", cost_picos=None),
            record(2, session_id="s1", model="kept"),
            record(3, session_id="s1", status=529, provider="late"),  # failed: not "served"
            record(4, session_id="s2"),
            record(5, session_id="s1", ts=DAY2, model="tomorrow"),
        ):
            store.add(row)
        await store.flush()
        day = await store.session_day("s1", DAY1, DAY1 + 100)
        assert (day.requests, day.cost_picos, day.unpriced) == (3, 2000 + 3000, 1)
        assert day.last is not None
        assert (day.last.request_id, day.last.model) == ("req-2", "kept")
        later = await store.session_day("s1", DAY2 - 1, DAY2 + 1)
        assert later.last is not None
        assert (later.requests, later.last.model) == (1, "tomorrow")
        none = await store.session_day("nobody", DAY1, DAY2 + 1)
        assert (none.requests, none.cost_picos, none.last) == (0, 0, None)
    finally:
        await store.close()


async def test_team_spend_reports_and_reservations(make_store: Factory) -> None:
    a, b = make_store(), make_store()
    await a.open()
    await b.open()
    try:
        ts = time.time()
        a.add(record(1, ts=ts - 30, team="platform", client_key_id="k1"))
        a.add(record(2, ts=ts - 20, team="platform", client_key_id="k2"))
        a.add(record(3, ts=ts - 10, team="data"))
        a.add(record(4, ts=ts - 5))
        await a.flush()
        rows = await b.records()
        assert [row.team for row in rows] == ["platform", "platform", "data", None]
        assert await b.spend_by("team", ts - 60) == {"platform": 3000, "data": 3000}
        by_team = await b.report(UsageQuery(by=("team",), since=ts - 60))
        # (SQLite sorts NULL first, PostgreSQL last.)
        assert {r.groups["team"]: (r.requests, r.cost_picos) for r in by_team} == {
            None: (1, 4000),
            "data": (1, 3000),
            "platform": (2, 3000),
        }
        platform = Window(since=ts - 60, limit_picos=5000, blocking=True, team="platform")
        data = Window(since=ts - 60, limit_picos=100_000, blocking=True, team="data")
        # A reservation of one team's request counts in that team's window on every instance.
        used, ok = await b.reserve(
            reservation_token("t1", ts),
            ts,
            [platform],
            1500,
            client_key_id="k1",
            user_name=None,
            team="platform",
        )
        assert (used, ok) == ([3000], True)
        assert await a.window_sums([platform, data], ts) == [4500, 3000]
        # Another 1,500 would cross the team's 5,000.
        used, ok = await a.reserve(
            reservation_token("t2", ts),
            ts,
            [platform],
            1500,
            client_key_id="k2",
            user_name=None,
            team="platform",
        )
        assert (used, ok) == ([4500], False)
        assert await b.window_sums([platform], ts) == [4500]
        # The ledger row (with its team) replaces the reservation.
        a.add(
            UsageRecord(
                ts=ts, request_id="t1", endpoint="messages", status=200, cost_picos=500, team="platform"
            )
        )
        await a.flush()
        assert await b.window_sums([platform, data], ts) == [3500, 3000]
    finally:
        await a.close()
        await b.close()
