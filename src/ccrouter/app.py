"""``create_app(settings)`` builds the ASGI-free aiohttp application; its lifespan owns the providers'
connection pools and the shared services. ``serve`` runs it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Middleware

from ccrouter.api import anthropic, health, openai
from ccrouter.api.auth import client_auth_middleware
from ccrouter.api.errors import error_middleware
from ccrouter.api.observe import observe_middleware
from ccrouter.api.state import STATE, AppState
from ccrouter.catalog import Catalog
from ccrouter.config import Settings
from ccrouter.dispatch import Dispatcher
from ccrouter.errors import ConfigError
from ccrouter.providers.registry import open_providers
from ccrouter.routing.custom import load_custom_router
from ccrouter.routing.scenarios import Router
from ccrouter.routing.session import SessionUsage
from ccrouter.tokens import TokenCounter

__all__ = ["create_app", "serve"]

log = logging.getLogger("ccrouter")

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def create_app(settings: Settings, *, simulated: bool = False) -> web.Application:
    middlewares: list[Middleware] = [observe_middleware, error_middleware]
    if settings.server.api_keys:
        middlewares.append(client_auth_middleware(settings.server.api_keys))
    app = web.Application(middlewares=middlewares, client_max_size=settings.server.max_body_bytes)
    app.add_routes([*anthropic.routes(), *openai.routes(), *health.routes()])

    async def lifespan(app: web.Application) -> AsyncIterator[None]:
        providers = await open_providers(settings.providers)
        catalog = Catalog.load()
        counter = TokenCounter()
        await counter.warm()  # loads the encoding (~0.3 s) in a thread, before the first request
        sessions = SessionUsage()
        custom = load_custom_router(settings.router.custom) if settings.router.custom else None
        router = Router(settings, catalog, counter, sessions, custom)
        dispatcher = Dispatcher(settings, providers, router, catalog, sessions)
        app[STATE] = AppState(
            settings=settings,
            dispatcher=dispatcher,
            counter=counter,
            simulated=simulated,
            started_at=time.time(),
        )
        try:
            yield
        finally:
            await asyncio.gather(*(p.aclose() for p in providers.values()), return_exceptions=True)

    app.cleanup_ctx.append(lifespan)
    return app


def serve(
    settings: Settings, *, host: str | None = None, port: int | None = None, simulated: bool = False
) -> None:
    """Run the gateway in the foreground until SIGINT/SIGTERM."""
    loop: asyncio.AbstractEventLoop | None = None
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # not available on every platform; asyncio's loop works too
        pass
    logging.basicConfig(
        level=settings.server.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    bind = host or settings.server.host
    if not settings.server.api_keys and bind not in _LOOPBACK:
        raise ConfigError(f"refusing to bind {bind!r} without client auth: set server.api_keys first")
    app = create_app(settings, simulated=simulated)
    web.run_app(
        app,
        host=bind,
        port=port if port is not None else settings.server.port,
        access_log=None,
        print=None,
        loop=loop,
    )
