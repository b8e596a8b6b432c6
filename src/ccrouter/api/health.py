"""Liveness, identity and provider health: GET /health, GET /health/providers, GET /, HEAD /."""

from __future__ import annotations

import dataclasses
import os
import time

import orjson
from aiohttp import web

from ccrouter import __version__
from ccrouter.api.endpoints import ENDPOINTS
from ccrouter.api.state import services_of
from ccrouter.services import Services
from ccrouter.status import provider_state

__all__ = ["routes"]


async def health(request: web.Request) -> web.Response:
    state: Services = services_of(request)
    body = {
        "status": "ok",
        "version": __version__,
        "uptime_s": round(time.time() - state.started_at, 3),
        "simulated": state.simulated,
        "providers": [
            {"name": p.name, "type": p.type, "models": [m.name for m in p.models]}
            for p in state.settings.providers
        ],
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def provider_health(request: web.Request) -> web.Response:
    """Each provider and model: breaker, headroom, cooldown, windows, limits, latency, score."""
    state: Services = services_of(request)
    live = state.live
    await live.refresh()
    rows = []
    for status in live.provider_statuses():
        row = dataclasses.asdict(status)
        limits = live.limits(status.provider, status.model)
        row["limits"] = {"rpm": limits.rpm, "tpm": limits.tpm, "rpd": limits.rpd}
        row["breaker_reason"] = live.breaker(status.provider, status.model).reason
        row["credentials"] = len(live.credentials(status.provider))
        row.update(live.detail(status.provider, status.model))
        row["state"] = provider_state(status)
        rows.append(row)
    body = {
        "strategy": state.settings.routing.strategy,
        "shared_state": state.settings.state.redis_url is not None,
        "providers": rows,
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def root(request: web.Request) -> web.Response:
    state: Services = services_of(request)
    body = {
        "name": "ccrouter",
        "version": __version__,
        # Lets the CLI tell the gateway it started from another one answering on the same port.
        "pid": os.getpid(),
        "simulated": state.simulated,
        "endpoints": [
            *dict.fromkeys(e.path for e in request.app[ENDPOINTS]),
            *("/health", "/health/live", "/health/ready", "/health/providers"),
        ],
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def head_root(request: web.Request) -> web.Response:
    return web.Response(status=200)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/health", health, allow_head=True),
        web.get("/health/providers", provider_health),
        web.get("/", root, allow_head=False),
        web.head("/", head_root),
    ]
