"""Liveness and identity: GET /health, GET /, HEAD /."""

from __future__ import annotations

import time

import orjson
from aiohttp import web

from ccrouter import __version__
from ccrouter.api.state import STATE, AppState

__all__ = ["routes"]


async def health(request: web.Request) -> web.Response:
    state: AppState = request.app[STATE]
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


async def root(request: web.Request) -> web.Response:
    state: AppState = request.app[STATE]
    body = {
        "name": "ccrouter",
        "version": __version__,
        "simulated": state.simulated,
        "endpoints": [
            "/v1/messages",
            "/v1/messages/count_tokens",
            "/v1/models",
            "/v1/chat/completions",
            "/health",
        ],
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def head_root(request: web.Request) -> web.Response:
    return web.Response(status=200)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/health", health, allow_head=True),
        web.get("/", root, allow_head=False),
        web.head("/", head_root),
    ]
