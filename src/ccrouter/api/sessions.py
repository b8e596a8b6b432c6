"""GET /api/sessions/{session_id}: what the statusline shows of one Claude Code session.

The session's last served request (route, scenario, whether a fallback served it, output tokens and
speed), its spend today (local midnight on) and whether the routes it involved are cooling down now.
It reads the in-memory ``SessionLog`` (``ccrouter.telemetry.sessions``), plus the ledger once per
session for what came before this process started; live state answers without I/O. A session
neither knows is a 404 in the Anthropic error envelope. Authenticated as every /api route is (the
admin token), or with the gateway's session read token (``ccrouter.statusline.state``).
"""

from __future__ import annotations

import orjson
from aiohttp import web

from ccrouter.api.state import services_of
from ccrouter.errors import NotFoundError, RequestError
from ccrouter.services import Services
from ccrouter.status import provider_state
from ccrouter.statusline.state import day_start
from ccrouter.statusline.summary import MAX_PASSED_OVER, last_request, today, valid_session_id
from ccrouter.store import UsageRecord
from ccrouter.telemetry.sessions import Baseline, LastRequest, SessionSummary

__all__ = ["SESSIONS_PREFIX", "routes"]

SESSIONS_PREFIX = "/api/sessions/"


async def session(request: web.Request) -> web.Response:
    session_id = request.match_info["session_id"]
    if not valid_session_id(session_id):
        raise RequestError("session id: expected 1-128 characters of A-Z a-z 0-9 . _ : -")
    services = services_of(request)
    log = services.session_log
    now = log.clock()
    since = day_start(now)
    summary = log.get(session_id)
    if summary is None or summary.baseline is None or summary.baseline.since != since:
        summary = log.set_baseline(session_id, await _baseline(services, session_id, since))
    baseline = summary.baseline
    assert baseline is not None  # set just above
    last = summary.last or baseline.last
    if last is None and summary.requests == 0 and baseline.requests == 0:
        raise NotFoundError(f"no request of session {session_id} has reached this gateway")
    body = {
        "session_id": session_id,
        "source": "gateway",
        "last_request": None if last is None else _last_json(last),
        "today": _today_json(summary, baseline, since),
        "cooling": await _cooling(services, last),
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def _baseline(services: Services, session_id: str, since: float) -> Baseline:
    """What the ledger has of the session from before this process started (one query per session
    and day: later rows are the log's)."""
    until = services.session_log.started_at
    day = await services.ledger.session_day(session_id, since, max(since, until))
    last = None if day.last is None else _from_record(day.last)
    return Baseline(since, day.requests, day.cost_picos, day.unpriced, last)


def _from_record(record: UsageRecord) -> LastRequest:
    try:
        failed = orjson.loads(record.fallbacks) if record.fallbacks else []
    except orjson.JSONDecodeError:
        failed = []
    passed = [
        f"{item.get('provider')},{item.get('model')}"
        for item in failed[:MAX_PASSED_OVER]
        if isinstance(item, dict)
    ]
    return LastRequest(
        ts=record.ts,
        provider=record.provider or "",
        model=record.model or "",
        scenario=record.scenario,
        status=record.status,
        passed_over=tuple(passed),
        output_tokens=record.output_tokens,
        duration_s=None if record.latency_ms is None else record.latency_ms / 1000.0,
        first_byte_s=None if record.ttfb_ms is None else record.ttfb_ms / 1000.0,
        estimated=record.estimated,
    )


def _last_json(last: LastRequest) -> dict[str, object]:
    return last_request(
        ts=last.ts,
        provider=last.provider,
        model=last.model,
        scenario=last.scenario,
        status=last.status,
        passed_over=list(last.passed_over),
        output_tokens=last.output_tokens,
        duration_s=last.duration_s,
        first_byte_s=last.first_byte_s,
        estimated=last.estimated,
    )


def _today_json(summary: SessionSummary, baseline: Baseline, since: float) -> dict[str, object]:
    ours = summary.since == since
    return today(
        since,
        baseline.requests + (summary.requests if ours else 0),
        baseline.cost_picos + (summary.cost_picos if ours else 0),
        baseline.unpriced + (summary.unpriced if ours else 0),
    )


async def _cooling(services: Services, last: LastRequest | None) -> list[dict[str, object]]:
    """The routes of the last request (the one that served, those passed over) that are not ready
    now: breaker open or half open, or cooling down after a rate limit."""
    if last is None:
        return []
    live = services.live
    routes = [
        (provider, model)
        for route in dict.fromkeys([f"{last.provider},{last.model}", *last.passed_over])
        for provider, _, model in [route.partition(",")]
        if services.settings.provider(provider) is not None
    ]
    # One read of their windows (cooldowns are there, in memory or Redis), then the status views.
    await live.assess(routes)
    out: list[dict[str, object]] = []
    for provider, model in routes:
        route = f"{provider},{model}"
        status = live.status(provider, model)
        if status is None:
            continue
        state = provider_state(status)
        if state != "ok":
            out.append(
                {"route": route, "state": state, "breaker": status.breaker, "cooldown_s": status.cooldown_s}
            )
    return out


def routes() -> list[web.RouteDef]:
    return [web.get(SESSIONS_PREFIX + "{session_id}", session)]
