"""GET /api/usage: the ledger summed per group, over a time range, as JSON or CSV (role viewer).

``limit`` keeps the groups that spent most; a group's name as a parameter keeps only the values it
lists (``?by=day,session&session=a&session=b``): the Costs page asks for its top values that way
rather than for every session of a month."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import orjson
from aiohttp import web
from multidict import MultiMapping

from ccrouter.api.state import services_of
from ccrouter.errors import RequestError
from ccrouter.store import GROUPS, GroupRow, UsageQuery
from ccrouter.store.rollups import TIME_GROUPS

__all__ = ["parse_time", "routes", "rows_csv"]

# A report's groups at most (``limit``), and the values one group may be kept to.
_MAX_LIMIT = 100_000
_MAX_VALUES = 100
_TOTALS = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "estimated",
    "unpriced",
    "cost_usd",
)


def parse_time(value: str, name: str) -> float:
    """Unix seconds, or an ISO 8601 date / date-time (UTC unless it names a zone)."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise RequestError(f"{name}: expected unix seconds or an ISO date, got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def rows_csv(by: tuple[str, ...], rows: list[GroupRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*by, *_TOTALS])
    for row in rows:
        data = row.to_dict()
        writer.writerow([data[name] for name in (*by, *_TOTALS)])
    return out.getvalue()


def _limit(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if not 1 <= limit <= _MAX_LIMIT:
        raise RequestError(f"limit: expected a whole number from 1 to {_MAX_LIMIT}, got {value!r}")
    return limit


def _among(query: MultiMapping[str]) -> tuple[tuple[str, tuple[str | bool | None, ...]], ...]:
    """``?session=a&session=b``: only those values of a group (an empty value: rows without one)."""
    out: list[tuple[str, tuple[str | bool | None, ...]]] = []
    for name in GROUPS:
        if name not in query:
            continue
        if name in TIME_GROUPS:
            raise RequestError(f"{name}: a time group keeps no values; use since and until")
        values = query.getall(name)
        if len(values) > _MAX_VALUES:
            raise RequestError(f"{name}: at most {_MAX_VALUES} values, got {len(values)}")
        out.append((name, tuple(_value(name, value) for value in values)))
    return tuple(out)


def _value(name: str, value: str) -> str | bool | None:
    if not value:
        return None
    if name != "subagent":
        return value
    if value not in ("true", "false"):
        raise RequestError(f"subagent: expected true or false, got {value!r}")
    return value == "true"


async def usage(request: web.Request) -> web.Response:
    query = request.query
    by = tuple(part for part in query.get("by", query.get("group_by", "")).split(",") if part)
    unknown = [name for name in by if name not in GROUPS]
    if unknown:
        raise RequestError(f"by: unknown group {unknown[0]!r} (use {', '.join(GROUPS)})")
    since = parse_time(query["since"], "since") if "since" in query else None
    until = parse_time(query["until"], "until") if "until" in query else None
    fmt = query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise RequestError(f"format: expected json or csv, got {fmt!r}")
    limit = _limit(query.get("limit"))
    store = services_of(request).ledger
    await store.flush()  # the report includes every request finished before it was asked for
    report = UsageQuery(by=by, since=since, until=until, limit=limit, among=_among(query))
    rows = await store.report(report)
    if fmt == "csv":
        # A download, named by its groups: the dashboard's Costs page links here.
        name = "-".join(("ccrouter-usage", *by)) + ".csv"
        return web.Response(
            text=rows_csv(by, rows),
            content_type="text/csv",
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )
    body = {
        "by": list(by),
        "since": since,
        "until": until,
        "limit": limit,
        "rows": [row.to_dict() for row in rows],
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def routes() -> list[web.RouteDef]:
    return [web.get("/api/usage", usage)]
