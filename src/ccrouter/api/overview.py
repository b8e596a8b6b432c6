"""GET /api/overview: the dashboard's Overview in one answer (role viewer).

Traffic over the last minute and the last hour (requests/s, p50/p95 latency, error rate, tokens/s,
cost) from the ``TrafficRecorder``, overall, per provider and per model; spend today (UTC) from the
ledger; each configured provider's state as ``/health/providers`` computes it (health, breaker,
rate-limit headroom, cooldown with its remaining seconds, credential pool size); and one point per
minute of the last hour for the charts. ``GET /api/live`` pushes the same document every second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from ccrouter.api.state import GATEWAY, services_of
from ccrouter.budgets.periods import period_bounds
from ccrouter.pricing import PICOS_PER_USD
from ccrouter.services import Services
from ccrouter.status import ProviderState, ProviderStatus, provider_state
from ccrouter.store import Store, UsageQuery
from ccrouter.telemetry.traffic import ALL, Totals, TrafficRecorder

__all__ = ["SPEND_TODAY", "SpendToday", "install", "overview", "overview_bytes", "routes"]

# Worst first: a provider shows the worst state of its models.
_STATES: tuple[ProviderState, ...] = ("down", "rate_limited", "recovering", "ok")
_BREAKERS = ("open", "half_open", "closed")


@dataclass(frozen=True, slots=True)
class _Spend:
    day: float
    at: float
    requests: int
    cost_picos: int
    unpriced: int


class SpendToday:
    """The ledger's spend since UTC midnight, read at most every ``ttl_s`` (one query at a time,
    however many dashboards ask): an indexed sum over ``usage.ts``."""

    def __init__(self, ttl_s: float = 5.0, clock: Callable[[], float] = time.time) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._cached: _Spend | None = None
        self._lock = asyncio.Lock()

    async def read(self, ledger: Store) -> _Spend:
        async with self._lock:
            now = self._clock()
            day, _ = period_bounds("daily", now)
            cached = self._cached
            if cached is not None and cached.day == day and now - cached.at < self.ttl_s:
                return cached
            rows = await ledger.report(UsageQuery(since=day))
            row = rows[0] if rows else None
            self._cached = _Spend(
                day,
                now,
                row.requests if row is not None else 0,
                row.cost_picos if row is not None else 0,
                row.unpriced if row is not None else 0,
            )
            return self._cached


SPEND_TODAY: web.AppKey[SpendToday] = web.AppKey("ccrouter_spend_today", SpendToday)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _traffic(totals: Totals) -> dict[str, Any]:
    return {
        "requests": totals.requests,
        "errors": totals.errors,
        "error_rate": round(totals.error_rate, 4),
        "requests_per_s": round(totals.requests_per_s, 3),
        "tokens_per_s": round(totals.tokens_per_s, 1),
        "input_tokens": totals.input_tokens,
        "output_tokens": totals.output_tokens,
        "cost_usd": round(totals.cost_usd, 6),
        "p50_ms": _ms(totals.p50_s),
        "p95_ms": _ms(totals.p95_s),
    }


def _windows(traffic: TrafficRecorder, key: tuple[str, str], now: float) -> dict[str, Any]:
    return {"minute": _traffic(traffic.minute(key, now)), "hour": _traffic(traffic.hour(key, now))}


def _worst(values: Iterable[str], order: tuple[str, ...], default: str) -> str:
    seen = set(values)
    return next((value for value in order if value in seen), default)


def _model_row(services: Services, status: ProviderStatus, now: float) -> dict[str, Any]:
    return {
        "provider": status.provider,
        "model": status.model,
        "state": provider_state(status),
        "breaker": status.breaker,
        "health_score": status.health_score,
        "headroom": status.headroom,
        "cooldown_s": status.cooldown_s,
        **_windows(services.traffic, (status.provider, status.model), now),
    }


def _provider_rows(services: Services, now: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    live = services.live
    by_provider: dict[str, list[ProviderStatus]] = {}
    for status in live.provider_statuses():
        by_provider.setdefault(status.provider, []).append(status)
    providers, models = [], []
    for config in services.settings.providers:
        statuses = by_provider.get(config.name, [])
        models += [_model_row(services, status, now) for status in statuses]
        providers.append(
            {
                "name": config.name,
                "type": config.type,
                "state": _worst((provider_state(s) for s in statuses), _STATES, "ok"),
                "breaker": _worst((s.breaker for s in statuses), _BREAKERS, "closed"),
                "health_score": min((s.health_score for s in statuses), default=1.0),
                "headroom": min((s.headroom for s in statuses), default=1.0),
                "cooldown_s": max((s.cooldown_s for s in statuses), default=0.0),
                "credentials": len(live.credentials(config.name)),
                "models": len(statuses),
                **_windows(services.traffic, (config.name, ""), now),
            }
        )
    return providers, models


def _series(traffic: TrafficRecorder, now: float) -> dict[str, Any]:
    """A point per minute; rates per second over the whole minute, so the current minute's grows
    as it fills (a burst at its start does not look like a spike)."""
    points = traffic.points(ALL, now)
    return {
        "step_s": 60,
        "t": [p.start for p in points],
        "requests": [p.requests for p in points],
        "errors": [p.errors for p in points],
        "requests_per_s": [round(p.requests / 60, 3) for p in points],
        "tokens_per_s": [round(p.tokens / 60, 1) for p in points],
        "p95_ms": [_ms(p.p95_s) for p in points],
    }


async def overview(services: Services, spend: SpendToday) -> dict[str, Any]:
    """The Overview document (see the module's docstring)."""
    await services.live.refresh()
    today = await spend.read(services.ledger)
    now = time.time()
    providers, models = _provider_rows(services, now)
    return {
        "now": round(now, 3),
        "version": services.version,
        "traffic": _windows(services.traffic, ALL, now),
        "spend_today": {
            "since": today.day,
            "cost_usd": today.cost_picos / PICOS_PER_USD,
            "requests": today.requests,
            "unpriced": today.unpriced,
        },
        "providers": providers,
        "models": models,
        "series": _series(services.traffic, now),
    }


async def overview_bytes(app: web.Application) -> bytes:
    """The Overview as JSON, on the configuration being served now (``/api/live``'s tick)."""
    return orjson.dumps(await overview(app[GATEWAY].current, app[SPEND_TODAY]))


async def overview_handler(request: web.Request) -> web.Response:
    body = await overview(services_of(request), request.app[SPEND_TODAY])
    return web.Response(
        body=orjson.dumps(body), content_type="application/json", headers={"cache-control": "no-store"}
    )


def install(app: web.Application) -> None:
    """The route and the spend-today cache every dashboard shares."""
    app[SPEND_TODAY] = SpendToday()
    app.add_routes(routes())


def routes() -> list[web.RouteDef]:
    return [web.get("/api/overview", overview_handler)]
