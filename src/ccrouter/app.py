"""``create_app(settings)`` builds the ASGI-free aiohttp application; its lifespan owns the providers'
connection pools and the shared services. ``serve`` runs it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from ccrouter.api import health
from ccrouter.api import metrics as metrics_api
from ccrouter.api import usage as usage_api
from ccrouter.api.auth import AuthGuard, admin_auth_middleware, client_auth_middleware
from ccrouter.api.endpoints import ENDPOINTS, EndpointTable
from ccrouter.api.errors import error_middleware
from ccrouter.api.observe import observe_middleware
from ccrouter.api.response_hooks import RESPONSE_HOOKS, ResponseHooks
from ccrouter.api.server import handler_args, use_gateway_protocol
from ccrouter.api.state import REGISTRY, STATE, AppState
from ccrouter.api.throttle import FailureThrottle
from ccrouter.budgets import BudgetAdmission
from ccrouter.catalog import Catalog
from ccrouter.config import Settings
from ccrouter.config_file import default_config_path
from ccrouter.dispatch import Dispatcher
from ccrouter.errors import ConfigError
from ccrouter.plugins import Extensions, Registry, load_plugins
from ccrouter.pricing import CostHook, PriceTable
from ccrouter.providers.registry import check_providers, open_pools
from ccrouter.resilience.health import HealthChecker
from ccrouter.resilience.live import LiveState
from ccrouter.resilience.windows import open_windows
from ccrouter.routing.scenarios import Router
from ccrouter.routing.session import SessionUsage
from ccrouter.routing.strategies import strategy_named
from ccrouter.runtime import tuned_for_serving
from ccrouter.store import InputEstimates, LedgerObserver, make_store
from ccrouter.telemetry import setup_logging
from ccrouter.telemetry.context import telemetry_context
from ccrouter.tokens import TokenCounter
from ccrouter.transformers.apply import build_transformers

__all__ = ["create_app", "serve"]

log = logging.getLogger("ccrouter")

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _report_warm_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("loading the token encoding failed: %s", task.exception())


def _use_response_hooks(app: web.Application, registry: Registry, extensions: Extensions) -> None:
    """Plugins' response hooks on aiohttp's prepare signal; not attached at all when no plugin has
    any (nothing per response then). Attached whenever one implements the hook, even if it registers
    none for these settings: a reload may bring some, and signals cannot change once started."""
    if registry.implements("register_response_hooks"):
        hooks = ResponseHooks(extensions.response_hooks, extensions.owner)
        app[RESPONSE_HOOKS] = hooks
        app.on_response_prepare.append(hooks.on_prepare)


def create_app(
    settings: Settings,
    *,
    simulated: bool = False,
    config_dir: Path | None = None,
    registry: Registry | None = None,
) -> web.Application:
    """``config_dir`` holds the default SQLite ledger and an installed price table (default: the
    folder of the default config file). ``registry``: what the plugins registered (default: the
    built-ins, the installed plugins and ``settings.plugins``, loaded now)."""
    if registry is None:
        base = config_dir if config_dir is not None else default_config_path().parent
        registry = Registry.build(load_plugins(settings.plugins, base_dir=base))
    check_providers(settings.providers, registry)
    # Unknown transformer names or bad options fail here, before the app exists.
    transformers = build_transformers(settings.providers, registry.transformers)
    server = settings.server
    middlewares: list[Middleware] = [observe_middleware, error_middleware]
    # One throttle of failed authentications for the client keys and the admin token.
    guard = AuthGuard(FailureThrottle(server.auth_throttle_burst, server.auth_throttle_per_minute))
    # Always on: without keys it still reads the x-ccrouter-user header; with keys it authenticates.
    middlewares.append(client_auth_middleware(server.api_keys, guard))
    middlewares.append(
        admin_auth_middleware(server.admin_token, guard, observability=server.observability_protected)
    )
    app = web.Application(
        middlewares=middlewares, client_max_size=server.max_body_bytes, handler_args=handler_args()
    )
    app[REGISTRY] = registry
    _use_response_hooks(app, registry, Extensions.build(registry, settings))
    use_gateway_protocol(app, server)
    # The client-facing endpoints come from the register_endpoints hooks (built-ins included); health,
    # usage and metrics are the gateway's own operational routes, never recorded as API traffic.
    app[ENDPOINTS] = EndpointTable(registry.endpoints)
    app.add_routes([*app[ENDPOINTS].routes(), *health.routes(), *usage_api.routes()])
    app.add_routes(metrics_api.routes())  # -- telemetry (issue 4)

    async def lifespan(app: web.Application) -> AsyncIterator[None]:
        # -- routing and resilience (issue 3): live state (memory or Redis), one provider per credential.
        extensions = Extensions.build(registry, settings)
        strategy = strategy_named(registry.strategies, settings.routing)
        live = LiveState(settings, open_windows(settings.state))
        pools = await open_pools(
            settings.providers, registry, on_headers=live.on_headers, transformers=transformers
        )
        providers = {name: next(iter(pool.values())) for name, pool in pools.items()}
        health_checks = HealthChecker(settings, pools, live) if settings.routing.health_checks else None
        catalog = Catalog.load()
        counter = TokenCounter()
        # The encoding loads (~0.3 s) in a thread while the gateway starts answering: routing counts
        # exactly only near a threshold, and whatever needs it first waits for the same load.
        warming = asyncio.create_task(counter.warm())
        warming.add_done_callback(_report_warm_failure)
        sessions = SessionUsage()
        router = Router(settings, catalog, counter, sessions, rules=extensions.rules, owner=extensions.owner)
        # -- usage ledger, prices and budgets (issue 4): the store is opened before the first request.
        ledger_dir = config_dir if config_dir is not None else default_config_path().parent
        ledger = make_store(settings.store, ledger_dir)
        await ledger.open()
        prices = PriceTable.load(settings.prices, ledger_dir)
        cost_hook = CostHook(settings, prices)
        estimates = InputEstimates()
        budgets = BudgetAdmission(settings, ledger, counter, prices, estimates)
        dispatcher = Dispatcher(
            settings,
            providers,
            router,
            catalog,
            sessions,
            admission=budgets,
            usage_hooks=[cost_hook],
            pools=pools,
            live=live,
            prices=prices,
            strategy=strategy,
            pre_dispatch=extensions.pre_dispatch,
            owner=extensions.owner,
        )
        app[STATE] = AppState(
            settings=settings,
            dispatcher=dispatcher,
            counter=counter,
            simulated=simulated,
            started_at=time.time(),
            ledger=ledger,
            budgets=budgets,
            live=live,
        )
        app[STATE].observers.append(LedgerObserver(ledger, cost_hook, counter, estimates))
        if health_checks is not None:
            health_checks.start()
        with tuned_for_serving():
            try:
                yield
            finally:
                if health_checks is not None:
                    await health_checks.stop()
                await asyncio.gather(
                    *(p.aclose() for pool in pools.values() for p in pool.values()), return_exceptions=True
                )
                await live.windows.aclose()
                await ledger.close()  # flushes every queued row
                await asyncio.gather(warming, return_exceptions=True)

    app.cleanup_ctx.append(lifespan)
    # -- telemetry (issue 4): metrics, request log and alerts over the state the lifespan built;
    # registered after it, so it starts after it and stops before it.
    app.cleanup_ctx.append(telemetry_context)
    return app


def serve(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    simulated: bool = False,
    config_dir: Path | None = None,
    reuse_port: bool = False,
) -> None:
    """Run the gateway in the foreground until SIGINT/SIGTERM. ``reuse_port`` lets several worker
    processes share one port (``ccrouter serve --workers N``)."""
    loop: asyncio.AbstractEventLoop | None = None
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # not available on every platform; asyncio's loop works too
        pass
    setup_logging(settings)  # -- telemetry (issue 4): structlog, JSON or console, secrets scrubbed
    bind = host or settings.server.host
    if not settings.server.api_keys and bind not in _LOOPBACK:
        raise ConfigError(f"refusing to bind {bind!r} without client auth: set server.api_keys first")
    if bind != settings.server.host:
        # The app decides from server.host what to protect (/metrics): it must see the real bind.
        settings = settings.model_copy(update={"server": settings.server.model_copy(update={"host": bind})})
    app = create_app(settings, simulated=simulated, config_dir=config_dir)
    web.run_app(
        app,
        host=bind,
        port=port if port is not None else settings.server.port,
        access_log=None,
        print=None,
        loop=loop,
        reuse_port=reuse_port or None,
    )
