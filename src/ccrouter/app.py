"""``create_app(settings)`` builds the ASGI-free aiohttp application; its lifespan owns the providers'
connection pools and the shared services. ``serve`` runs it."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from ccrouter.api import audit as audit_api
from ccrouter.api import budgets as budgets_api
from ccrouter.api import config_api, config_edit, health, lifecycle
from ccrouter.api import keys as keys_api
from ccrouter.api import live as live_api
from ccrouter.api import logs as logs_api
from ccrouter.api import metrics as metrics_api
from ccrouter.api import overview as overview_api
from ccrouter.api import requests as requests_api
from ccrouter.api import sessions as sessions_api
from ccrouter.api import usage as usage_api
from ccrouter.api.auth import AUTH_GUARD, AuthGuard, auth_middleware
from ccrouter.api.endpoints import ENDPOINTS, EndpointTable
from ccrouter.api.errors import error_middleware
from ccrouter.api.observe import observe_middleware
from ccrouter.api.response_hooks import RESPONSE_HOOKS, ResponseHooks
from ccrouter.api.server import handler_args, use_gateway_protocol
from ccrouter.api.state import GATEWAY, REGISTRY
from ccrouter.api.throttle import FailureThrottle
from ccrouter.config import ServerConfig, Settings
from ccrouter.config_file import default_config_path
from ccrouter.errors import ConfigError
from ccrouter.plugins import Extensions, Registry, load_plugins
from ccrouter.providers.registry import check_providers
from ccrouter.reload import Gateway
from ccrouter.runtime import tuned_for_serving
from ccrouter.services import Services
from ccrouter.statusline.state import GatewayState, local_url, write_state
from ccrouter.store import sqlite_path
from ccrouter.telemetry import setup_logging
from ccrouter.telemetry.logring import LogRing
from ccrouter.telemetry.redact import secrets_of
from ccrouter.transformers.apply import build_transformers
from ccrouter.ui import pages as ui_pages
from ccrouter.ui.pages import UI_ASSETS

__all__ = ["create_app", "serve"]

log = logging.getLogger("ccrouter")

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
# The served gateway's session read token (``ccrouter.statusline.state``): made at import, so that the
# workers forked by ``serve --workers N`` share it, and new at every start.
_SESSION_TOKEN = secrets.token_urlsafe(24)


def _use_response_hooks(
    app: web.Application, registry: Registry, extensions: Extensions
) -> ResponseHooks | None:
    """Plugins' response hooks on aiohttp's prepare signal; not attached at all when no plugin has
    any (nothing per response then). Attached whenever one implements the hook, even if it registers
    none for these settings: a reload may bring some, and signals cannot change once started."""
    if not registry.implements("register_response_hooks"):
        return None
    hooks = ResponseHooks(extensions.response_hooks, extensions.owner)
    app[RESPONSE_HOOKS] = hooks
    app.on_response_prepare.append(hooks.on_prepare)
    return hooks


def create_app(
    settings: Settings,
    *,
    simulated: bool = False,
    config_dir: Path | None = None,
    registry: Registry | None = None,
    config_path: Path | None = None,
    watch: bool = True,
    reload_on_sighup: bool = False,
    session_token: str | None = None,
    log_ring: LogRing | None = None,
) -> web.Application:
    """``config_dir`` holds the default SQLite ledger and an installed price table (default: the
    folder of ``config_path``, else of the default config file). ``registry``: what the plugins
    registered (default: the built-ins, the installed plugins and ``settings.plugins``, loaded now).
    ``config_path``: the file ``settings`` came from, reloaded when it changes (``watch``), on
    SIGHUP (``reload_on_sighup``) and on ``POST /api/config/reload``. ``session_token``: opens
    ``GET /api/sessions/{id}`` and ``GET /api/logs`` besides the admin token (the statusline's).
    ``log_ring``: the recent log records ``GET /api/logs`` serves (``serve`` feeds it)."""
    base = config_dir or (config_path or default_config_path()).parent
    if registry is None:
        registry = Registry.build(load_plugins(settings.plugins, base_dir=base))
    check_providers(settings.providers, registry)
    # Unknown transformer names or bad options fail here, before the app exists.
    build_transformers(settings.providers, registry.transformers)
    server = settings.server
    # -- lifecycle (issue 17): after the error middleware, so a refusal while draining is in the
    # client's envelope.
    middlewares: list[Middleware] = [observe_middleware, error_middleware, lifecycle.lifecycle_middleware]
    # One throttle of failed authentications for the client keys and the admin token.
    guard = AuthGuard(FailureThrottle(server.auth_throttle_burst, server.auth_throttle_per_minute))
    # Always on: it names who each request is (``ccrouter.auth``), or, on an open gateway, reads the
    # x-ccrouter-user header; the credentials it accepts come with each configuration.
    middlewares.append(auth_middleware(guard, session_reader=session_token))
    app = web.Application(
        middlewares=middlewares, client_max_size=server.max_body_bytes, handler_args=handler_args()
    )
    app[REGISTRY] = registry
    app[AUTH_GUARD] = guard
    app[lifecycle.LIFECYCLE] = lifecycle.Lifecycle()
    hooks = _use_response_hooks(app, registry, Extensions.build(registry, settings))
    use_gateway_protocol(app, server)
    # The client-facing endpoints come from the register_endpoints hooks (built-ins included); health,
    # usage and metrics are the gateway's own operational routes, never recorded as API traffic.
    app[ENDPOINTS] = EndpointTable(registry.endpoints)
    app.add_routes([*app[ENDPOINTS].routes(), *health.routes(), *usage_api.routes()])
    app.add_routes(lifecycle.routes())  # -- /health/live, /health/ready (issue 17)
    app.add_routes(metrics_api.routes())  # -- telemetry (issue 4)
    app.add_routes(config_api.routes())  # -- live configuration (issue 12)
    app.add_routes(config_edit.routes())  # -- the config file's editor (issue 15, the dashboard)
    app.add_routes(sessions_api.routes())  # -- the statusline (issue 13)
    app[logs_api.LOG_RING] = log_ring if log_ring is not None else LogRing()
    app.add_routes(logs_api.routes())  # -- ccrouter logs of a foreground gateway (issue 13)
    app.add_routes(requests_api.routes())  # -- the request log (issue 15, the dashboard)
    app.add_routes(budgets_api.routes())  # -- budgets and their use (issue 15, the Costs page)
    overview_api.install(app)  # -- the dashboard's Overview (issue 15)
    live_api.install(app)  # -- ... and its live stream (issue 15)
    app.add_routes([*keys_api.routes(), *audit_api.routes()])  # -- a team's gateway (issue 14)
    app.on_response_prepare.append(config_api.version_header)
    if server.ui.enabled:  # -- the dashboard (issue 15)
        app[UI_ASSETS] = ui_pages.UiFiles()
        app.add_routes(ui_pages.routes())
        app.cleanup_ctx.append(ui_pages.load_assets)

    async def lifespan(app: web.Application) -> AsyncIterator[None]:
        # One frozen set of services, rebuilt whole on reload (``ccrouter.services``, ``ccrouter.reload``).
        gateway = await Gateway.start(
            settings, registry, config_dir=base, simulated=simulated, config_path=config_path
        )
        app[GATEWAY] = gateway
        if hooks is not None:
            # A reload brings its own response hooks; the signal handler reads the current ones.
            gateway.on_swap.append(lambda s: hooks.use(s.extensions.response_hooks, s.extensions.owner))
        if watch and config_path is not None:
            gateway.watch()
        gateway.refresh_secrets()  # -- secrets that change at their source (issue 14)
        if reload_on_sighup:
            gateway.handle_sighup()
        with tuned_for_serving():
            try:
                yield
            finally:
                await gateway.aclose()

    app.cleanup_ctx.append(lifespan)
    return app


def serve(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    simulated: bool = False,
    config_dir: Path | None = None,
    config_path: Path | None = None,
    watch: bool = True,
    reuse_port: bool = False,
) -> None:
    """Run the gateway in the foreground until SIGINT/SIGTERM. ``reuse_port`` lets several worker
    processes share one port (``ccrouter serve --workers N``). ``config_path``: the file the
    settings came from, reloaded on SIGHUP and, with ``watch``, when it changes."""
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # not available on every platform; asyncio's loop works too
        pass
    # -- telemetry (issue 4): structlog, JSON or console, secrets scrubbed; the recent records are
    # kept in memory too, for ``GET /api/logs`` (``ccrouter logs`` without a log file).
    ring = LogRing()
    setup_logging(settings, ring=ring)
    base = config_dir or (config_path or default_config_path()).parent
    bind = host or settings.server.host
    if not settings.server.auth_required and bind not in _LOOPBACK:
        raise ConfigError(
            f"refusing to bind {bind!r} without client auth: set server.api_keys, server.jwt or"
            " server.require_auth: true first"
        )
    if bind != settings.server.host:
        # The app decides from server.host what to protect (/metrics): it must see the real bind.
        settings = settings.model_copy(update={"server": settings.server.model_copy(update={"host": bind})})
    app = create_app(
        settings,
        simulated=simulated,
        config_dir=config_dir,
        config_path=config_path,
        watch=watch,
        reload_on_sighup=True,
        session_token=_SESSION_TOKEN,
        log_ring=ring,
    )
    app.on_startup.append(_scrub_reloaded_secrets)
    port = port if port is not None else settings.server.port
    # Port 0: bound here, so that the state file can name the port the kernel picked.
    sock = _bound_socket(bind, settings.server.backlog) if port == 0 else None
    if sock is not None:
        port = sock.getsockname()[1]
    state = GatewayState(
        url=local_url(bind, port),
        token=_SESSION_TOKEN,
        ledger=None if (ledger := sqlite_path(settings.store, base)) is None else str(ledger),
        pid=os.getppid() if reuse_port else os.getpid(),
        started_at=time.time(),
    )
    app.on_startup.append(lambda app: _write_state(base, state))
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(_run(app, settings.server, sock=sock, host=bind, port=port, worker=reuse_port))


async def _run(
    app: web.Application,
    server: ServerConfig,
    *,
    sock: socket.socket | None,
    host: str,
    port: int,
    worker: bool,
) -> None:
    """Serve ``app`` until SIGTERM or SIGINT, then drain (``ccrouter.api.lifecycle``): SIGTERM waits
    ``server.drain_grace_s`` before refusing new requests, SIGINT does not; requests in flight get
    ``server.drain_s``; a second signal stops at once. A worker of ``serve --workers N`` listens for
    SIGTERM only: its supervisor passes Ctrl-C on as SIGTERM (the terminal's own SIGINT is ignored, or
    every Ctrl-C would count twice)."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site: web.BaseSite
        # The listen backlog (server.backlog): aiohttp's 128 resets clients when hundreds connect
        # within a second.
        if sock is not None:
            site = web.SockSite(runner, sock, backlog=server.backlog)
        else:
            site = web.TCPSite(runner, host, port, reuse_port=worker or None, backlog=server.backlog)
        await site.start()
        received: list[signal.Signals] = []
        stop, force = asyncio.Event(), asyncio.Event()

        def on_signal(sig: signal.Signals) -> None:
            received.append(sig)
            (force if stop.is_set() else stop).set()

        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM,) if worker else (signal.SIGTERM, signal.SIGINT)
        if worker:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        for sig in signals:
            loop.add_signal_handler(sig, on_signal, sig)
        await stop.wait()
        grace = server.drain_grace_s if received[0] == signal.SIGTERM else 0.0
        drained = asyncio.ensure_future(app[lifecycle.LIFECYCLE].drain(grace, server.drain_s))
        forced = asyncio.ensure_future(force.wait())
        await asyncio.wait({drained, forced}, return_when=asyncio.FIRST_COMPLETED)
        for task in (drained, forced):
            task.cancel()
        if force.is_set() and not drained.done():
            log.warning("stopping at once (a second signal): requests in flight are cut")
        for sig in signals:
            loop.remove_signal_handler(sig)
    finally:
        # Stops listening, ends the dashboard's live streams, gives what is left 1 s, then closes the
        # services (the ledger is flushed there).
        await runner.cleanup()


def _bound_socket(host: str, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    # Listening now, with the configured backlog (the kernel caps it at net.core.somaxconn); the
    # site's own listen() on a listening socket only sets the backlog again.
    sock.listen(backlog)
    return sock


async def _write_state(config_dir: Path, state: GatewayState) -> None:
    """The statusline's state file (``ccrouter.statusline.state``); a gateway that cannot write it
    still serves (the statusline then reads the ledger)."""
    try:
        await asyncio.to_thread(write_state, str(config_dir), state)
    except OSError as exc:
        log.warning("could not write the statusline state file in %s: %s", config_dir, exc)


async def _scrub_reloaded_secrets(app: web.Application) -> None:
    """Logging is set up once per process; after a reload its scrubbing also covers the new
    settings' secrets (and still the old ones: requests in flight may still log them)."""
    gateway = app[GATEWAY]
    seen = secrets_of(gateway.current.settings)

    def rescrub(services: Services) -> None:
        seen.update(secrets_of(services.settings))
        setup_logging(services.settings, secrets=seen, ring=app[logs_api.LOG_RING])

    gateway.on_swap.append(rescrub)
