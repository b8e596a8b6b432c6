"""How fast the dashboard's ledger queries answer on a ledger of a million rows (issue 15's target:
under 200 ms each). Fills a fresh SQLite ledger (or a PostgreSQL schema with --postgres URL) with N
rows spread over 30 days, times each query the pages use (the median of a few runs, PASS/FAIL against
200 ms; the CSV download of every session, which no page waits for, as info), and what writing costs: rows per second through ``add`` + ``flush`` in the production batch
size, on the full ledger.

The rows look like a team's gateway: 200 keys used unevenly (a few heavy users), each key one user and
team, sessions of a few hours per key, each in one project, a handful of scenario/model routes.

    .venv/bin/python bench/ledger_queries.py            # 1,000,000 rows in SQLite
    .venv/bin/python bench/ledger_queries.py --rows 200000 --postgres postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ccrouter.store import RequestQuery, UsageQuery, UsageRecord, Window
from ccrouter.store.base import Store
from ccrouter.store.postgres import PostgresStore

try:
    from ccrouter.store.rollups import ROLLUPS
except ImportError:  # a checkout from before the rollups (to measure what they changed)
    ROLLUPS = ()  # type: ignore[assignment]
from ccrouter.store.sqlite import SQLiteStore

DAY = 86_400.0
KEYS = 200
SESSION_S = 3 * 3600.0
# scenario -> (weight, [(provider, model, weight)])
ROUTES = {
    "default": (60, [("anthropic", "claude-sonnet-4-6", 1)]),
    "background": (25, [("anthropic", "claude-haiku-4-5", 7), ("deepseek", "deepseek-chat", 3)]),
    "think": (15, [("anthropic", "claude-opus-4-1", 1), ("openai", "gpt-5", 1)]),
}
TARGET_MS = 200.0


def _rows(count: int, now: float, seed: int = 7, span: float = 30 * DAY) -> list[UsageRecord]:
    """``count`` rows over the ``span`` before ``now``, oldest first (a ledger is written in about
    time order; random order made filling a million rows take ten minutes)."""
    rng = random.Random(seed)
    stamps = sorted(now - rng.random() * span for _ in range(count))
    keys = rng.choices(range(KEYS), weights=[1 / (k + 1) ** 0.8 for k in range(KEYS)], k=count)
    scenarios = rng.choices(list(ROUTES), weights=[w for w, _ in ROUTES.values()], k=count)
    out = []
    for n in range(count):
        ts = stamps[n]
        key = keys[n]
        period = int(ts // SESSION_S)
        scenario = scenarios[n]
        routes = ROUTES[scenario][1]
        provider, model, _ = (
            routes[0] if len(routes) == 1 else rng.choices(routes, [w for *_, w in routes])[0]
        )
        failed = rng.random() < 0.03
        out.append(
            UsageRecord(
                ts=ts,
                request_id=f"req_{n}",
                endpoint="messages" if rng.random() < 0.95 else "chat_completions",
                status=rng.choice((429, 500, 529)) if failed else 200,
                error_type="upstream_error" if failed else None,
                session_id=f"s{key}-{period}",
                client_key_id=f"key_{key:04d}",
                user_name=f"user{key % 120}",
                team=f"team{key % 12}",
                project=f"p{(key * 7 + period) % 40}",
                profile=("work", "fast", None)[key % 3],
                subagent=rng.random() < 0.2,
                scenario=scenario,
                provider=provider,
                model=model,
                latency_ms=rng.uniform(200, 9000),
                input_tokens=rng.randint(100, 90_000),
                output_tokens=rng.randint(10, 4000),
                estimated=rng.random() < 0.05,
                cost_picos=None if rng.random() < 0.01 else rng.randint(10**6, 10**9),
                route_reason="default route; strategy intelligent within tiers",
            )
        )
    return out


async def _fill(store: Store, rows: list[UsageRecord], chunk: int) -> float:
    started = time.perf_counter()
    for i in range(0, len(rows), chunk):
        for row in rows[i : i + chunk]:
            store.add(row)
        await store.flush()
    return time.perf_counter() - started


async def _timed(
    what: str, call: Callable[[], Awaitable[Any]], runs: int = 5, *, judged: bool = True
) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    median = statistics.median(times)
    verdict = ("PASS" if median <= TARGET_MS else "FAIL") if judged else "info"
    print(f"  {verdict}  {what:<52} {median:8.1f} ms", flush=True)
    return median


def _unbounded(store: Store, now: float) -> list[tuple[str, Callable[[], Awaitable[Any]]]]:
    """Every session of a month: the CSV download, not a page's query (a file of 48,000 rows)."""
    month = now - 30 * DAY
    return [
        (
            "CSV: 30 days by session, every session",
            lambda: store.report(UsageQuery(by=("session",), since=month)),
        ),
        (
            "CSV: 30 days by day+session, every session",
            lambda: store.report(UsageQuery(by=("day", "session"), since=month)),
        ),
    ]


def _queries(store: Store, now: float) -> list[tuple[str, Callable[[], Awaitable[Any]]]]:
    month = now - 30 * DAY
    today = now - now % DAY
    out: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
    for by in (
        ("day",),
        ("day", "provider"),
        ("provider",),
        ("model",),
        ("key",),
        ("user",),
        ("team",),
    ):
        query = UsageQuery(by=by, since=month, until=now)
        out.append((f"usage 30 days by {'+'.join(by)}", lambda q=query: store.report(q)))
    # The Costs page by session (its heaviest view): the 50 dearest sessions, the range's total,
    # each bucket's, and the six dearest over time; the same for the last 24 hours by hour.
    for label, since, bucket in (("30 days", month, "day"), ("24 hours", now - DAY, "hour")):
        top = UsageQuery(by=("session",), since=since, limit=50)
        out.append((f"costs page, {label}: top 50 sessions", lambda q=top: store.report(q)))
        total = UsageQuery(by=(bucket,), since=since)
        out.append((f"costs page, {label}: spend per {bucket}", lambda q=total: store.report(q)))

        async def six(top: UsageQuery = top, since: float = since, bucket: str = bucket) -> object:
            rows = await store.report(replace(top, limit=6))
            values = tuple(row.groups["session"] for row in rows)
            return await store.report(
                UsageQuery(by=(bucket, "session"), since=since, among=(("session", values),))
            )

        out.append((f"costs page, {label}: top 50, then the top 6 per {bucket}", six))
    out.append(
        ("usage 30 days by key, top 20", lambda: store.report(UsageQuery(by=("key",), since=month, limit=20)))
    )
    out.append(
        (
            "usage today by provider+model",
            lambda: store.report(UsageQuery(by=("provider", "model"), since=today)),
        )
    )
    out.append(("overview: requests and spend today", lambda: store.report(UsageQuery(since=today))))
    out.append(
        ("spend today (global budget window)", lambda: store.window_sums([Window(today, 10**15, False)], now))
    )
    out.append(
        (
            "spend this month, one key's budget window",
            lambda: store.window_sums([Window(month, 10**15, False, client_key_id="key_0003")], now),
        )
    )
    out.append(
        (
            "spend this month, global budget window",
            lambda: store.window_sums([Window(month, 10**15, False)], now),
        )
    )
    out.append(("spend this month per key (budgets page)", lambda: store.spend_by("key", month)))
    out.append(("request log, newest 50", lambda: store.requests(RequestQuery())))
    filters = {
        "provider": "openai",
        "model": "gpt-5",
        "key": "key_0150",
        "user": "user7",
        "team": "team3",
        "session": "s42-1000",
        "scenario": "think",
        "endpoint": "chat_completions",
    }
    for name, value in filters.items():
        query = RequestQuery(equals=((name, value),))
        out.append((f"request log, {name} = {value}", lambda q=query: store.requests(q)))
    for status in ("2xx", "4xx", "5xx", "error", 429):
        query = RequestQuery(status=status)  # type: ignore[arg-type]
        out.append((f"request log, status {status}", lambda q=query: store.requests(q)))
    query = RequestQuery(equals=(("user", "user7"),), status="error")
    out.append(("request log, user7 errors", lambda: store.requests(query)))

    async def second_page() -> object:
        first = await store.requests(RequestQuery())
        return await store.requests(RequestQuery(before_id=first[-1][0]))

    out.append(("request log, first + second page", second_page))
    return out


async def _sizes(store: Store) -> str:
    """How many rows each table holds (the rollups' where they exist)."""
    tables = ["usage", *(rollup.table for rollup in ROLLUPS)]
    counts = []
    for table in tables:
        sql = f"SELECT COUNT(*) FROM {table}"
        try:
            if isinstance(store, SQLiteStore):
                count = (await store._run(lambda sql=sql: store._conn().execute(sql).fetchone()))[0]
            else:
                assert isinstance(store, PostgresStore)
                async with store._acquire() as conn:
                    count = await conn.fetchval(sql)
        except Exception:  # a ledger without rollups
            continue
        counts.append(f"{table.removeprefix('usage_')} {count:,}")
    return "rows: " + ", ".join(counts)


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5, help="runs of each query (the median counts)")
    parser.add_argument(
        "--postgres", default="", help="a PostgreSQL URL (a fresh schema is made and dropped)"
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="ccrouter-ledger-bench-"))
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    store: Store = (
        PostgresStore(args.postgres, schema=schema, batch_size=5000)
        if args.postgres
        else SQLiteStore(folder / "usage.db", batch_size=5000)
    )
    await store.open()
    now = time.time()
    kind = "PostgreSQL" if args.postgres else "SQLite"
    try:
        rows = _rows(args.rows, now)
        seconds = await _fill(store, rows, 5000)
        print(
            f"{args.rows:,} rows into {kind} in {seconds:.1f} s"
            f" ({args.rows / seconds:,.0f} rows/s, batches of 5000)"
        )
        print(await _sizes(store), flush=True)
        if isinstance(store, PostgresStore):
            # The planner's statistics, as autovacuum gathers them a minute after a fill: without
            # them it guesses 200 groups for any GROUP BY and spills its hash tables to disk.
            async with store._acquire() as conn:
                await conn.execute("ANALYZE")
        worst = 0.0
        for what, call in _queries(store, now):
            worst = max(worst, await _timed(what, call, args.runs))
        for what, call in _unbounded(store, now):
            await _timed(what, call, args.runs, judged=False)
        # The write path as the gateway uses it: 500-row batches of new requests, onto the full ledger.
        extra = _rows(20_000, now + 3600, seed=8, span=3600)  # the next hour's requests
        seconds = await _fill(store, extra, 500)
        print(
            f"write path: {len(extra):,} rows in batches of 500 in {seconds:.2f} s"
            f" ({len(extra) / seconds:,.0f} rows/s)"
        )
        return 0 if worst <= TARGET_MS else 1
    finally:
        await store.close()
        shutil.rmtree(folder, ignore_errors=True)
        if args.postgres:
            import asyncpg

            conn = await asyncpg.connect(args.postgres)
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.close()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
