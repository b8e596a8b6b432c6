"""GET /api/logs: the gateway's recent log records (``ccrouter.telemetry.logring``), for
``ccrouter logs`` when there is no log file (a foreground ``ccrouter serve``).

Query: ``since`` (a seq: the records from it on, oldest first; without it the last ones), ``limit``
(0-2000, default 100), ``request`` (a request id) and ``level`` (that level and above). Answer:
``{"records": [{"seq": n, "record": {...}}], "next": seq}``; poll with ``since=next``. The records
are the redacted JSON lines the log stream gets. Bad parameters are a 400 in the Anthropic error
envelope. Authenticated as every /api route is (the admin token), or with the gateway's read token
(``ccrouter.statusline.state``).
"""

from __future__ import annotations

import orjson
from aiohttp import web

from ccrouter.errors import RequestError
from ccrouter.logfile import LEVELS
from ccrouter.telemetry.logring import MAX_RECORDS, LogRing

__all__ = ["LOGS_PATH", "LOG_RING", "routes"]

LOGS_PATH = "/api/logs"
# The ring ``serve`` feeds from its log handler; an app built without one serves an empty ring.
LOG_RING: web.AppKey[LogRing] = web.AppKey("ccrouter_log_ring", LogRing)
_DEFAULT_LIMIT = 100
_MAX_REQUEST_ID = 256


def _integer(query: dict[str, str], name: str, low: int, high: int) -> int | None:
    text = query.get(name)
    if text is None:
        return None
    if not text.isdigit() or len(text) > 18 or not low <= int(text) <= high:
        raise RequestError(f"{name}: expected an integer from {low} to {high}")
    return int(text)


async def recent_logs(request: web.Request) -> web.Response:
    query = dict(request.query)
    since = _integer(query, "since", 0, 10**18)
    limit = _integer(query, "limit", 0, MAX_RECORDS)
    request_id = query.get("request") or None
    if request_id is not None and len(request_id) > _MAX_REQUEST_ID:
        raise RequestError(f"request: at most {_MAX_REQUEST_ID} characters")
    level = query.get("level")
    if level is not None and level.lower() not in LEVELS:
        raise RequestError(f"level: expected one of {', '.join(LEVELS)}")
    page = request.app[LOG_RING].read(
        since=since,
        limit=_DEFAULT_LIMIT if limit is None else limit,
        request_id=request_id,
        level=None if level is None else level.lower(),
    )
    records = [{"seq": seq, "record": record} for seq, record in page.records]
    body = {"records": records, "next": page.next_seq}
    return web.Response(body=orjson.dumps(body, default=str), content_type="application/json")


def routes() -> list[web.RouteDef]:
    return [web.get(LOGS_PATH, recent_logs)]
