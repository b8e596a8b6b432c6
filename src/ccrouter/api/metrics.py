"""GET /metrics: the Prometheus exposition of the app's own registry."""

from __future__ import annotations

from aiohttp import web

from ccrouter.api.state import STATE
from ccrouter.telemetry.metrics import CONTENT_TYPE

__all__ = ["routes"]


async def metrics(request: web.Request) -> web.Response:
    telemetry = request.app[STATE].metrics
    if telemetry is None:
        raise web.HTTPNotFound(text="metrics are not enabled")
    body = await telemetry.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def routes() -> list[web.RouteDef]:
    return [web.get("/metrics", metrics)]
