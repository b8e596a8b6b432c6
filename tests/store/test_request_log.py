"""The request log on both ledger backends (``Store.requests``, the dashboard's Requests page):
newest first, every filter, status classes, pages that neither skip nor repeat a row."""

from __future__ import annotations

from collections.abc import Callable

from test_store import DAY1, record

from ccrouter.store import RequestQuery
from ccrouter.store.base import Store

Factory = Callable[[], Store]


async def test_filters_order_and_pages(make_store: Factory) -> None:
    store = make_store()
    await store.open()
    try:
        for n in range(1, 41):
            store.add(
                record(
                    n,
                    ts=DAY1 + n // 2,  # pairs share a timestamp: pages must still split them exactly
                    provider="a" if n % 2 else "b",
                    status=200 if n % 5 else (429 if n % 10 else 502),
                    user_name=f"u{n % 3}",
                    session_id="s1" if n <= 10 else "s2",
                    route_reason=f"default route; #{n}",
                    error_type=None if n % 5 else "rate_limit",
                )
            )
        await store.flush()
        everything = await store.requests(RequestQuery(limit=500))
        assert len(everything) == 40
        stamps = [(r.ts, row_id) for row_id, r in everything]
        assert stamps == sorted(stamps, reverse=True)
        assert everything[0][1].route_reason == "default route; #40"
        # Pages of 7 cover every row once, in the same order.
        seen, before = [], None
        while True:
            page = await store.requests(RequestQuery(limit=7, before_id=before))
            seen += [row_id for row_id, _ in page]
            if len(page) < 7:
                break
            before = page[-1][0]
        assert seen == [row_id for row_id, _ in everything]

        async def ids(**query: object) -> set[str]:
            rows = await store.requests(RequestQuery(limit=500, **query))  # type: ignore[arg-type]
            return {r.request_id for _, r in rows}

        assert await ids(equals=(("provider", "a"),)) == {f"req-{n}" for n in range(1, 41, 2)}
        assert await ids(equals=(("provider", "a"), ("user", "u1"))) == {
            f"req-{n}" for n in range(1, 41, 2) if n % 3 == 1
        }
        assert await ids(equals=(("session", "s1"),)) == {f"req-{n}" for n in range(1, 11)}
        assert await ids(status=429) == {f"req-{n}" for n in (5, 15, 25, 35)}
        assert await ids(status="5xx") == {f"req-{n}" for n in (10, 20, 30, 40)}
        assert await ids(status="error") == {f"req-{n}" for n in range(5, 41, 5)}
        assert await ids(status="2xx") == {f"req-{n}" for n in range(1, 41) if n % 5}
        assert await ids(since=DAY1 + 10, until=DAY1 + 12) == {f"req-{n}" for n in range(20, 24)}
    finally:
        await store.close()


async def test_pages_follow_the_time_order_when_ids_do_not(make_store: Factory) -> None:
    # A row's id follows when it was written (its request ended), its ts when the request began: a
    # long request gets a later id and an earlier ts. The next page starts after the last row shown.
    store = make_store()
    await store.open()
    try:
        for n in range(1, 31):
            store.add(record(n, ts=DAY1 + (n * 7919) % 31 // 2, endpoint="messages" if n % 4 else "chat"))
        await store.flush()
        everything = await store.requests(RequestQuery(limit=500))
        for filters in ((), (("endpoint", "messages"),)):
            expected = [row_id for row_id, r in everything if not filters or r.endpoint == "messages"]
            seen, before = [], None
            while True:
                page = await store.requests(RequestQuery(equals=filters, limit=4, before_id=before))
                seen += [row_id for row_id, _ in page]
                if len(page) < 4:
                    break
                before = page[-1][0]
            assert seen == expected
    finally:
        await store.close()
