"""How fast the dashboard's ledger queries answer on a ledger of a million rows (issue 15's target:
under 200 ms each). Fills a fresh SQLite ledger (or a PostgreSQL schema with --postgres URL) with N
rows spread over 30 days, then times each query a few times and prints the median.

    .venv/bin/python bench/ledger_queries.py            # 1,000,000 rows in SQLite
    .venv/bin/python bench/ledger_queries.py --rows 200000 --postgres postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

from ccrouter.store import RequestQuery, UsageQuery, UsageRecord
from ccrouter.store.base import Store
from ccrouter.store.postgres import PostgresStore
from ccrouter.store.sqlite import SQLiteStore

DAY = 86_400.0
PROVIDERS = [("anthropic", "claude-sonnet-4-6"), ("openai", "gpt-5"), ("deepseek", "deepseek-chat")]
TARGET_MS = 200.0


def _rows(count: int, now: float) -> list[UsageRecord]:
    rng = random.Random(7)
    base = UsageRecord(ts=0.0, request_id="", endpoint="messages", status=200)
    out = []
    for n in range(count):
        provider, model = PROVIDERS[n % len(PROVIDERS)]
        status = 200 if rng.random() > 0.03 else rng.choice((429, 500, 529))
        out.append(
            replace(
                base,
                ts=now - rng.random() * 30 * DAY,
                request_id=f"req_{n}",
                status=status,
                session_id=f"s{n % 5000}",
                client_key_id=f"key_{n % 1000:04d}",
                user_name=f"user{n % 200}",
                team=f"team{n % 10}",
                scenario=("default", "background", "think")[n % 3],
                provider=provider,
                model=model,
                latency_ms=rng.uniform(200, 9000),
                input_tokens=rng.randint(100, 90_000),
                output_tokens=rng.randint(10, 4000),
                cost_picos=rng.randint(10**6, 10**9),
                route_reason="default route; strategy intelligent within tiers",
            )
        )
    return out


async def _fill(store: Store, rows: list[UsageRecord]) -> float:
    started = time.perf_counter()
    for i in range(0, len(rows), 5000):
        for row in rows[i : i + 5000]:
            store.add(row)
        await store.flush()
    return time.perf_counter() - started


async def _timed(what: str, call: object, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()  # type: ignore[operator]
        times.append((time.perf_counter() - started) * 1000)
    median = statistics.median(times)
    verdict = "PASS" if median <= TARGET_MS else "FAIL"
    print(f"  {verdict}  {what:<58} {median:8.1f} ms")
    return median


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", default="", help="a PostgreSQL URL (a fresh schema is made and dropped)")
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
    try:
        seconds = await _fill(store, _rows(args.rows, now))
        print(f"{args.rows:,} rows into {'PostgreSQL' if args.postgres else 'SQLite'} in {seconds:.1f} s")
        day = now - DAY
        worst = 0.0
        for what, call in (
            ("request log, newest 50", lambda: store.requests(RequestQuery(limit=50))),
            ("request log, one provider", lambda: store.requests(RequestQuery(equals=(("provider", "openai"),)))),
            ("request log, one user, errors", lambda: store.requests(RequestQuery(equals=(("user", "user7"),), status="error"))),
            ("request log, one session", lambda: store.requests(RequestQuery(equals=(("session", "s42"),)))),
            ("request log, page 20 (before id)", lambda: store.requests(RequestQuery(before_id=args.rows - 1000))),
            ("spend today, the Overview's", lambda: store.report(UsageQuery(since=now - now % DAY))),
            ("usage today by provider, model", lambda: store.report(UsageQuery(by=("provider", "model"), since=day))),
            ("usage 30 days by day", lambda: store.report(UsageQuery(by=("day",), since=now - 30 * DAY))),
            ("usage 30 days by key, top 20", lambda: store.report(UsageQuery(by=("key",), limit=20))),
        ):
            worst = max(worst, await _timed(what, call))
        return 0 if worst <= TARGET_MS else 1
    finally:
        await store.close()
        if args.postgres:
            import asyncpg

            conn = await asyncpg.connect(args.postgres)
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.close()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
