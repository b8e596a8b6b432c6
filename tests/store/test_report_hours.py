"""The ``hour`` group, on both backends: the Costs page's last 24 hours, hour by hour (UTC)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from ccrouter.store import UsageQuery, UsageRecord
from ccrouter.store.base import Store

Factory = Callable[[], Store]
NOON = datetime(2026, 11, 20, 12, tzinfo=UTC).timestamp()


def _record(ts: float, n: int, provider: str) -> UsageRecord:
    return UsageRecord(
        ts=ts, request_id=f"req-{n}", endpoint="messages", status=200, provider=provider, cost_picos=1000 * n
    )


async def test_report_by_hour(make_store: Factory) -> None:
    store = make_store()
    await store.open()
    try:
        store.add(_record(NOON + 1, 1, "a"))
        store.add(_record(NOON + 3599, 2, "a"))
        store.add(_record(NOON + 3600, 3, "b"))
        store.add(_record(NOON + 86_400, 4, "a"))
        await store.flush()
        rows = await store.report(UsageQuery(by=("hour", "provider"), until=NOON + 86_400))
        assert [(r.groups["hour"], r.groups["provider"], r.requests, r.cost_picos) for r in rows] == [
            ("2026-11-20T12", "a", 2, 3000),
            ("2026-11-20T13", "b", 1, 3000),
        ]
    finally:
        await store.close()
