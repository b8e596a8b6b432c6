"""GET /metrics: the Prometheus exposition of the app's own registry."""

from __future__ import annotations

from aiohttp import web

from ccrouter.api.state import services_of
from ccrouter.telemetry.metrics import CONTENT_TYPE

__all__ = ["routes"]


async def metrics(request: web.Request) -> web.Response:
    body = await services_of(request).metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def routes() -> list[web.RouteDef]:
    return [web.get("/metrics", metrics)]
