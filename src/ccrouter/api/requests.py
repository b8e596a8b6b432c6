"""GET /api/requests: the request log from the ledger, newest first, one page at a time (role viewer).

Filters: ``since`` / ``until`` (unix seconds or ISO dates), ``provider``, ``model``, ``key``, ``user``,
``team``, ``session``, ``scenario``, ``endpoint`` (exact values), ``status`` (a code, or ``2xx``,
``4xx``, ``5xx``, ``error``), ``limit`` (1-500, default 50) and ``before`` (the ``next`` of the previous
page). Each row carries its route decision and explanation, the fallbacks tried, tokens, cost and
timings; never a prompt (the ledger holds none). The dashboard's Requests page reads it too.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from ccrouter.api.state import services_of
from ccrouter.api.usage import parse_time
from ccrouter.errors import RequestError
from ccrouter.pricing.table import format_usd
from ccrouter.store import REQUEST_FILTERS, RequestQuery, UsageRecord

__all__ = ["MAX_PAGE", "parse_request_query", "routes"]

MAX_PAGE = 500
_MAX_VALUE = 256
_CLASSES = ("2xx", "4xx", "5xx", "error")
_KNOWN = frozenset({"since", "until", "status", "limit", "before", *REQUEST_FILTERS})


def _integer(value: str, name: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise RequestError(f"{name}: expected a whole number, got {value[:40]!r}") from None
    if not low <= number <= high:
        raise RequestError(f"{name}: must be between {low} and {high}, got {number}")
    return number


def parse_request_query(query: Any) -> RequestQuery:
    """A ``RequestQuery`` from the URL's query; a 400 naming the parameter for anything wrong."""
    unknown = sorted(set(query) - _KNOWN)
    if unknown:
        raise RequestError(f"unknown parameter {unknown[0]!r}: use any of {', '.join(sorted(_KNOWN))}")
    equals = []
    for name in REQUEST_FILTERS:
        value = query.get(name)
        if value is not None:
            if not value or len(value) > _MAX_VALUE:
                raise RequestError(f"{name}: expected 1 to {_MAX_VALUE} characters")
            equals.append((name, value))
    status: int | Any = None
    raw = query.get("status")
    if raw is not None:
        status = raw if raw in _CLASSES else _integer(raw, "status", 100, 599)
    return RequestQuery(
        since=parse_time(query["since"], "since") if "since" in query else None,
        until=parse_time(query["until"], "until") if "until" in query else None,
        equals=tuple(equals),
        status=status,
        before_id=_integer(query["before"], "before", 1, 2**62) if "before" in query else None,
        limit=_integer(query["limit"], "limit", 1, MAX_PAGE) if "limit" in query else 50,
    )


def request_view(row_id: int, record: UsageRecord) -> dict[str, Any]:
    fallbacks = orjson.loads(record.fallbacks) if record.fallbacks else []
    return {
        "id": row_id,
        "ts": record.ts,
        "request_id": record.request_id,
        "endpoint": record.endpoint,
        "status": record.status,
        "error_type": record.error_type,
        "session": record.session_id,
        "key": record.client_key_id,
        "user": record.user_name,
        "team": record.team,
        "project": record.project,
        "profile": record.profile,
        "subagent": record.subagent,
        "scenario": record.scenario,
        "provider": record.provider,
        "model": record.model,
        "route_reason": record.route_reason,
        "attempts": record.attempts,
        "fallbacks": fallbacks,
        "latency_ms": record.latency_ms,
        "ttfb_ms": record.ttfb_ms,
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "cache_read_tokens": record.cache_read_tokens,
        "cache_write_tokens": record.cache_write_tokens,
        "estimated": record.estimated,
        "cost_usd": None if record.cost_picos is None else format_usd(record.cost_picos),
    }


async def request_log(request: web.Request) -> web.Response:
    query = parse_request_query(request.query)
    store = services_of(request).ledger
    await store.flush()  # the log shows every request finished before it was asked for
    rows = await store.requests(query)
    body = {
        "requests": [request_view(row_id, record) for row_id, record in rows],
        # Full page: there may be more, older ones.
        "next": rows[-1][0] if len(rows) == query.limit else None,
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def routes() -> list[web.RouteDef]:
    return [web.get("/api/requests", request_log)]
