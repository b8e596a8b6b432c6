"""The gateway's lifecycle as a load balancer sees it: ``GET /health/live``, ``GET /health/ready`` and
the drain after SIGTERM.

``Lifecycle`` is one per process (created with the app, shared by every configuration a reload
brings). Its middleware counts the API requests in flight and, once the drain refuses new work,
answers them ``529 overloaded_error`` in the client's own envelope (Claude Code and the SDKs retry a
529; behind a load balancer the retry reaches another instance). ``drain`` is what ``serve`` runs on
SIGTERM: ready fails at once, new requests are still served for ``server.drain_grace_s``, then refused,
and the requests in flight get up to ``server.drain_s`` to finish.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from ccrouter.api.observe import API_REQUEST
from ccrouter.api.state import GATEWAY
from ccrouter.errors import ShuttingDownError
from ccrouter.services import Services

__all__ = ["LIFECYCLE", "Lifecycle", "lifecycle_middleware", "routes"]

log = logging.getLogger("ccrouter")

# A readiness check's dependencies (ledger, Redis) each get this long to answer.
_CHECK_TIMEOUT_S = 2.0
# Probes from several load balancers share one check per this interval.
_CHECK_TTL_S = 1.0


@dataclass(frozen=True)
class Readiness:
    ready: bool
    checks: dict[str, str]  # name -> "ok" or what is wrong

    def body(self) -> bytes:
        return orjson.dumps({"status": "ready" if self.ready else "not ready", "checks": self.checks})


class Lifecycle:
    """Requests in flight, and whether the process is draining (ready fails) or refusing (529)."""

    def __init__(self) -> None:
        self.draining = False
        self.refusing = False
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._checked: tuple[float, Readiness] | None = None
        self._checking: asyncio.Task[Readiness] | None = None

    def enter(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    async def drain(self, grace_s: float, drain_s: float) -> bool:
        """Fail readiness now, serve for ``grace_s``, then refuse new requests and wait up to
        ``drain_s`` for those in flight. True if they all finished."""
        self.draining = True
        if grace_s > 0:
            log.info("draining: not ready; still serving new requests for %gs", grace_s)
            await asyncio.sleep(grace_s)
        self.refusing = True
        if self.in_flight:
            log.info(
                "draining: new requests refused; waiting up to %gs for %d in flight", drain_s, self.in_flight
            )
        try:
            async with asyncio.timeout(drain_s):
                await self._idle.wait()
        except TimeoutError:
            log.warning(
                "draining: %d requests still in flight after %gs; closing them", self.in_flight, drain_s
            )
            return False
        return True

    async def readiness(self, services: Services) -> Readiness:
        """Not draining, and the ledger (and Redis, when configured) answering; checked at most once
        per ``_CHECK_TTL_S`` whatever the number of probes."""
        if self.draining:
            return Readiness(False, {"lifecycle": "draining"})
        now = time.monotonic()
        if self._checked is not None and now - self._checked[0] < _CHECK_TTL_S:
            return self._checked[1]
        if self._checking is None or self._checking.done():
            self._checking = asyncio.ensure_future(_check(services))
        result = await asyncio.shield(self._checking)
        self._checked = (time.monotonic(), result)
        return result


async def _check(services: Services) -> Readiness:
    checks = {"lifecycle": "ok", "ledger": await _probe(services.ledger.ping())}
    if services.settings.state.redis_url is not None:
        checks["redis"] = await _probe(services.windows.ping())
    return Readiness(all(value == "ok" for value in checks.values()), checks)


async def _probe(ping: Awaitable[None]) -> str:
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT_S):
            await ping
    except TimeoutError:
        return f"no answer within {_CHECK_TIMEOUT_S:g}s"
    except Exception as exc:  # any failure means not ready: its class, never its text (may hold a DSN)
        return f"unreachable ({type(exc).__name__})"
    return "ok"


LIFECYCLE: web.AppKey[Lifecycle] = web.AppKey("ccrouter_lifecycle", Lifecycle)


@web.middleware
async def lifecycle_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Counts the API requests in flight; refuses new ones (529) once the drain says so."""
    if not request.get(API_REQUEST, False):  # decided by ``observe_middleware``, which runs first
        return await handler(request)  # health, metrics, the dashboard: never held, never refused
    lifecycle = request.app[LIFECYCLE]
    if lifecycle.refusing:
        raise ShuttingDownError("the gateway is shutting down; retry the request")
    lifecycle.enter()
    try:
        return await handler(request)
    finally:
        lifecycle.leave()


async def live(request: web.Request) -> web.Response:
    """The process answers: nothing else is checked (a restart would not fix a dependency)."""
    return web.Response(body=b'{"status":"live"}', content_type="application/json")


async def ready(request: web.Request) -> web.Response:
    result = await request.app[LIFECYCLE].readiness(request.app[GATEWAY].current)
    return web.Response(
        status=200 if result.ready else 503, body=result.body(), content_type="application/json"
    )


def routes() -> list[web.RouteDef]:
    return [web.get("/health/live", live, allow_head=True), web.get("/health/ready", ready, allow_head=True)]
