"""GET /api/audit: the audit trail (``ccrouter.auth.audit``), newest first, filtered by time,
action and actor. ``ccrouter audit`` shows the same rows through ``audit_view``."""

from __future__ import annotations

import re
import time
from typing import Any

import orjson
from aiohttp import web

from ccrouter.api.state import services_of
from ccrouter.api.usage import parse_time
from ccrouter.auth.keys import AuditRecord
from ccrouter.errors import RequestError

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "audit_view", "parse_limit", "parse_since", "routes"]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_MAX_FILTER = 200
_AGO = re.compile(r"^([0-9]{1,7})([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}


def parse_since(value: str, name: str, now: float | None = None) -> float:
    """``1h``, ``30m``, ``7d`` (that long ago), unix seconds or an ISO date / date-time."""
    match = _AGO.match(value)
    if match is not None:
        return (time.time() if now is None else now) - int(match.group(1)) * _UNIT_S[match.group(2)]
    return parse_time(value[:64], name)


def parse_limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not value.isdigit() or not 1 <= int(value[:8]) <= MAX_LIMIT:
        raise RequestError(f"limit: expected 1 to {MAX_LIMIT}, got {value[:32]!r}")
    return int(value)


def audit_view(record: AuditRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "ts": record.ts,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.ts)),
        "actor": record.actor,
        "action": record.action,
        "outcome": record.outcome,
        "target": record.target,
        "address": record.address,
        "detail": record.detail,
    }


def _filter(query: Any, name: str) -> str | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    if len(value) > _MAX_FILTER:
        raise RequestError(f"{name}: longer than {_MAX_FILTER} characters")
    return str(value)


async def audit(request: web.Request) -> web.Response:
    query = request.query
    since = parse_since(query["since"], "since") if query.get("since") else None
    until = parse_since(query["until"], "until") if query.get("until") else None
    rows = await services_of(request).ledger.audit_list(
        since=since,
        until=until,
        action=_filter(query, "action"),
        actor=_filter(query, "actor"),
        limit=parse_limit(query.get("limit")),
    )
    body = {"entries": [audit_view(row) for row in rows]}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def routes() -> list[web.RouteDef]:
    return [web.get("/api/audit", audit)]
