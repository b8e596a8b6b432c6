"""One ledger row per request, built from the finished ``Exchange``; report queries over the rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import orjson

from ccrouter.exchange import Exchange

__all__ = [
    "COLUMNS",
    "GROUPS",
    "MAX_REASON",
    "REQUEST_FILTERS",
    "GroupRow",
    "RequestQuery",
    "SessionDay",
    "UsageQuery",
    "UsageRecord",
    "Window",
    "record_from_exchange",
    "record_from_row",
]


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """What the ledger keeps of one request. Costs are pico-dollars (1e-12 USD); None: no known price."""

    ts: float
    request_id: str
    endpoint: str
    status: int
    session_id: str | None = None
    client_key_id: str | None = None
    user_name: str | None = None
    scenario: str | None = None
    provider: str | None = None
    model: str | None = None
    error_type: str | None = None
    latency_ms: float | None = None
    ttfb_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    estimated: bool = False
    cost_picos: int | None = None
    attempts: int = 0
    # JSON list of the failed attempts before the final one: [{provider, model, status, error_type}].
    fallbacks: str | None = None
    # Claude Code (issue 13): the request's project and profile, and whether a subagent sent it.
    project: str | None = None
    profile: str | None = None
    subagent: bool = False
    # A team's gateway (issue 14): the caller's team (its managed key's or its token's).
    team: str | None = None

    # The dashboard (issue 15): why the route was chosen (the scenario rule and the ranking), for the
    # request log; at most ``MAX_REASON`` characters.
    route_reason: str | None = None

    def reservation_token(self) -> str:
        """The budget reservation this row settles (see ``budgets``)."""
        return reservation_token(self.request_id, self.ts)


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(UsageRecord))
MAX_REASON = 1000


def record_from_row(row: Sequence[Any]) -> UsageRecord:
    values = dict(zip(COLUMNS, row, strict=True))
    values["estimated"] = bool(values["estimated"])
    values["subagent"] = bool(values["subagent"])
    return UsageRecord(**values)


def reservation_token(request_id: str, started_at: float) -> str:
    # Clients choose request ids, so the id alone may repeat; with the start time it does not.
    return f"{request_id}@{started_at!r}"


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def record_from_exchange(exchange: Exchange, cost_picos: int | None) -> UsageRecord:
    usage = exchange.usage
    failed = [a for a in exchange.attempts if a.error_type is not None]
    fallbacks = (
        orjson.dumps(
            [
                {"provider": a.provider, "model": a.model, "status": a.status, "error_type": a.error_type}
                for a in failed
            ]
        ).decode()
        if failed
        else None
    )
    return UsageRecord(
        ts=exchange.started_at,
        request_id=exchange.request_id,
        endpoint=exchange.endpoint,
        status=exchange.status,
        session_id=exchange.session_id,
        client_key_id=exchange.client_key_id,
        user_name=exchange.user,
        scenario=exchange.scenario,
        provider=exchange.provider,
        model=exchange.model,
        error_type=exchange.error_type,
        latency_ms=_ms(exchange.duration_s),
        ttfb_ms=_ms(exchange.first_byte_s),
        input_tokens=usage.input_tokens if usage else 0,
        output_tokens=usage.output_tokens if usage else 0,
        cache_read_tokens=usage.cache_read_input_tokens if usage else 0,
        cache_write_tokens=usage.cache_creation_input_tokens if usage else 0,
        estimated=exchange.usage_estimated,
        cost_picos=cost_picos,
        attempts=len(exchange.attempts),
        fallbacks=fallbacks,
        project=exchange.project,
        profile=exchange.profile,
        subagent=exchange.subagent,
        team=exchange.team,
        route_reason=exchange.route_reason[:MAX_REASON] if exchange.route_reason else None,
    )


GroupName = Literal[
    "provider",
    "model",
    "key",
    "user",
    "team",
    "session",
    "scenario",
    "day",
    "endpoint",
    "project",
    "profile",
    "subagent",
]
# Report group name -> column (``day`` is computed per dialect).
GROUPS: dict[str, str] = {
    "provider": "provider",
    "model": "model",
    "key": "client_key_id",
    "user": "user_name",
    "team": "team",
    "session": "session_id",
    "scenario": "scenario",
    "endpoint": "endpoint",
    "day": "day",
    "hour": "hour",
    "project": "project",
    "profile": "profile",
    "subagent": "subagent",
}


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """Rows in ``[since, until)`` (unix seconds), summed per distinct value of the ``by`` groups."""

    by: tuple[str, ...] = ()
    since: float | None = None
    until: float | None = None
    # Most expensive first, at most ``limit`` groups (None: all, in group order).
    limit: int | None = None
    # Only rows whose group (a ``GROUPS`` name, not a time group) has one of the values; None in the
    # values matches rows without one. The Costs page draws its few top values over time this way.
    among: tuple[tuple[str, tuple[str | bool | None, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class GroupRow:
    groups: dict[str, str | None]
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    estimated: int
    cost_picos: int
    unpriced: int

    def to_dict(self) -> dict[str, object]:
        from ccrouter.pricing.table import format_usd

        return {
            **self.groups,
            "requests": self.requests,
            "errors": self.errors,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "estimated": self.estimated,
            "unpriced": self.unpriced,
            "cost_usd": format_usd(self.cost_picos),
        }


@dataclass(frozen=True, slots=True)
class SessionDay:
    """One session in the ledger: its requests and spend in ``[since, until)``, and its last served
    request before ``until`` (None when it has none)."""

    requests: int
    cost_picos: int
    unpriced: int
    last: UsageRecord | None


@dataclass(frozen=True, slots=True)
class Window:
    """One budget's scope over its current period, as the store sums it: the ledger's costs since
    ``since`` plus the reservations of requests still in flight, for one key, user, team, profile,
    project or all."""

    since: float
    limit_picos: int
    blocking: bool
    client_key_id: str | None = None
    user_name: str | None = None
    profile: str | None = None
    project: str | None = None
    team: str | None = None


# Request-log filter name -> column (the dashboard's Requests page, ``GET /api/requests``).
REQUEST_FILTERS: dict[str, str] = {
    "provider": "provider",
    "model": "model",
    "key": "client_key_id",
    "user": "user_name",
    "team": "team",
    "session": "session_id",
    "scenario": "scenario",
    "endpoint": "endpoint",
}
StatusClass = Literal["2xx", "4xx", "5xx", "error"]


@dataclass(frozen=True, slots=True)
class RequestQuery:
    """Ledger rows newest first: in ``[since, until)``, matching each of ``equals`` (a
    ``REQUEST_FILTERS`` name -> value), of one ``status`` (a code, or a class: ``2xx``, ``4xx``,
    ``5xx``, ``error`` = any failure), older than the row ``before_id`` (the next page), at most
    ``limit``."""

    since: float | None = None
    until: float | None = None
    equals: tuple[tuple[str, str], ...] = ()
    status: int | StatusClass | None = None
    before_id: int | None = None
    limit: int = 50
