"""The services one configuration runs on, built in one place and closed in one place.

``build_services(settings, registry)`` returns a frozen ``Services``: provider pools, live state,
router, dispatcher, prices, budgets, observers, alerts, the plugins' extensions. A reload builds a
new one from the new settings with ``previous=`` the running one, and takes over from it what is not
per-configuration: the ledger and the live-state windows (their location needs a restart), the
token counter, metrics, decode caches, and the pools of providers whose configuration did not
change. ``activate`` starts its background work once it serves; ``close_services(old, successor)``
closes what ``successor`` does not share (at shutdown, with no successor: everything).

Handlers reach the services through ``ccrouter.api.state.services_of(request)``: the request keeps
the services it started on until it ends (``users`` counts them), so a reload never changes a
request's configuration midway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ccrouter.api.heap import HeapTrimmer
from ccrouter.api.large import LargeBodies
from ccrouter.auth.audit import Auditor
from ccrouter.auth.authenticator import Authenticator
from ccrouter.auth.directory import KeyDirectory
from ccrouter.auth.limits import Admissions, ClientLimits
from ccrouter.auth.manage import KeyManager
from ccrouter.budgets import BudgetAdmission
from ccrouter.catalog import Catalog
from ccrouter.codecs.body import DecodeCache
from ccrouter.config import Settings
from ccrouter.dispatch import Dispatcher
from ccrouter.errors import ConfigError
from ccrouter.exchange import EndObserver, Observer
from ccrouter.plugins import Extensions, Registry, collect_observers
from ccrouter.pricing import CostHook, PriceTable
from ccrouter.providers.base import Provider
from ccrouter.providers.registry import ProviderPools, check_providers, close_pools, open_pools
from ccrouter.resilience.health import HealthChecker
from ccrouter.resilience.live import LiveState
from ccrouter.resilience.shared import SharedLive
from ccrouter.resilience.synced import SyncedWindows
from ccrouter.resilience.windows import WindowStore, open_windows
from ccrouter.routing.scenarios import Router
from ccrouter.routing.session import SessionUsage
from ccrouter.routing.strategies import RankingPolicy, strategy_named
from ccrouter.store import InputEstimates, Store, make_store
from ccrouter.telemetry.alert_state import LocalAlertState, RedisAlertState, open_alert_state
from ccrouter.telemetry.alerts import Alerter, RecentRequests, Sender
from ccrouter.telemetry.metrics import GatewayMetrics
from ccrouter.telemetry.redact import Redactor, secrets_of
from ccrouter.telemetry.sessions import SessionLog
from ccrouter.telemetry.traffic import TrafficRecorder
from ccrouter.tokens import TokenCounter
from ccrouter.transformers.apply import build_transformers
from ccrouter.ui.session import SessionCodec, session_codec

if TYPE_CHECKING:
    from ccrouter.auth.jwt import JwtVerifier

__all__ = [
    "ObserverContext",
    "Services",
    "Users",
    "activate",
    "build_services",
    "check_registered",
    "close_services",
    "close_stores",
    "stop_background",
]

log = logging.getLogger("ccrouter")


@dataclass(frozen=True, slots=True)
class ObserverContext:
    """What ``register_observers`` hooks may use to build their observers: the configuration and
    the services of the configuration being built."""

    settings: Settings
    ledger: Store
    cost_hook: CostHook
    counter: TokenCounter
    # Input estimates the budget admission left for the ledger's observer to settle.
    estimates: InputEstimates
    metrics: GatewayMetrics
    # The alerts' window of recent requests (None when alerts are off).
    recent: RecentRequests | None
    # Per-session summaries for the statusline (``GET /api/sessions/{id}``).
    session_log: SessionLog
    # The last hour's traffic for the dashboard's Overview (``ccrouter.telemetry.traffic``).
    traffic: TrafficRecorder


class Users:
    """How many requests are being served on one ``Services``; ``drained`` waits for the last."""

    __slots__ = ("_idle", "count")

    def __init__(self) -> None:
        self.count = 0
        self._idle: asyncio.Event | None = None

    def enter(self) -> None:
        self.count += 1

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0 and self._idle is not None:
            self._idle.set()

    async def drained(self) -> None:
        if self.count > 0:
            self._idle = asyncio.Event()
            await self._idle.wait()


class _HeadersRelay:
    """Announced rate limits from a pool's responses go to the live state of the configuration
    now being served, also from a pool a reload kept (it was opened for an older ``LiveState``)."""

    __slots__ = ("live",)

    def __init__(self, live: LiveState) -> None:
        self.live = live

    def __call__(self, provider: str, credential: str, model: str, headers: Mapping[str, str]) -> None:
        self.live.on_headers(provider, credential, model, headers)


@dataclass(slots=True)
class _Background:
    """What runs beside the requests for one configuration (started by ``activate``)."""

    health: HealthChecker | None = None
    alerts: asyncio.Task[None] | None = None
    # Only the first Services loads the token encoding; its successors share the counter.
    warming: asyncio.Task[None] | None = None


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    registry: Registry
    extensions: Extensions
    # A short hash of the settings (``ccrouter.reload.config_version``) and when they were loaded.
    version: str
    loaded_at: float
    started_at: float
    simulated: bool
    config_dir: Path
    dispatcher: Dispatcher
    router: Router
    live: LiveState
    windows: WindowStore
    pools: ProviderPools
    catalog: Catalog
    counter: TokenCounter
    sessions: SessionUsage
    # What each Claude Code session was last served, and its spend today (the statusline's API).
    session_log: SessionLog
    ledger: Store
    prices: PriceTable
    budgets: BudgetAdmission
    estimates: InputEstimates
    metrics: GatewayMetrics
    redactor: Redactor
    observers: tuple[Observer, ...]
    # -- issue 17: those of them awaited before a response ends (``store.durable``'s ledger)
    end_observers: tuple[EndObserver, ...]
    alerter: Alerter | None
    recent: RecentRequests | None
    # Decoded messages and tools of recent requests (agents resend their history every turn), one
    # cache per body format.
    decode_cache: DecodeCache
    openai_decode_cache: DecodeCache
    # Returns to the system what huge bodies grew the heap by (``ccrouter.api.heap``).
    heap: HeapTrimmer
    # At most a few large bodies read and decoded at once (``ccrouter.api.large``).
    large: LargeBodies
    # -- a team's gateway (issue 14): who each request is (static keys and the admin token of this
    # configuration; managed keys and single sign-on tokens through what every configuration
    # shares), the audit trail, and the one way managed keys change.
    authenticator: Authenticator
    auditor: Auditor
    # The managed keys' replica (every configuration shares it; ``server.keys`` needs a restart).
    directory: KeyDirectory
    key_manager: KeyManager
    # Single sign-on tokens (``server.jwt``, restart-only), shared by every configuration; None: off.
    verifier: JwtVerifier | None
    # -- the dashboard (issue 15): seals and opens its session cookies (``server.ui``).
    ui_sessions: SessionCodec
    # The last hour's traffic (the Overview's): one recorder for the process, kept across reloads.
    traffic: TrafficRecorder
    # Who announces alerts among the instances, and what is announced (every configuration shares it).
    alert_state: LocalAlertState | RedisAlertState
    # Breakers, statistics and sessions shared with the other instances (None: no state.redis_url).
    shared: SharedLive | None = None
    users: Users = field(default_factory=Users)
    _relay: _HeadersRelay | None = None
    _background: _Background = field(default_factory=_Background)


def _profile_strategies(settings: Settings, registry: Registry) -> dict[str, RankingPolicy]:
    """The ranking policy of each profile naming its own strategy (a ConfigError names the profile)."""
    out: dict[str, RankingPolicy] = {}
    for name, profile in settings.profiles.items():
        if profile.routing.strategy is None:
            continue
        config = settings.routing.model_copy(update={"strategy": profile.routing.strategy})
        try:
            out[name] = strategy_named(registry.strategies, config)
        except ConfigError as exc:
            raise ConfigError(f"profiles.{name}.{exc.message}") from None
    return out


def check_registered(settings: Settings, registry: Registry) -> None:
    """What only the registry can check (provider types and vendors, transformer names, the
    strategies): a ``ConfigError`` naming the key, what a reload and ``POST /api/config/validate``
    both ask before building anything."""
    check_providers(settings.providers, registry)
    build_transformers(settings.providers, registry.transformers)
    strategy_named(registry.strategies, settings.routing)
    _profile_strategies(settings, registry)


def _report_warm_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("loading the token encoding failed: %s", task.exception())


async def _pools_for(
    settings: Settings, registry: Registry, previous: Services | None, relay: _HeadersRelay
) -> ProviderPools:
    """A pool per provider: the running one where the provider's configuration is unchanged (no
    reconnect), a new one otherwise."""
    kept: ProviderPools = {}
    fresh = []
    for config in settings.providers:
        old = previous.settings.provider(config.name) if previous is not None else None
        if previous is not None and old == config and config.name in previous.pools:
            kept[config.name] = previous.pools[config.name]
        else:
            fresh.append(config)
    chains = build_transformers(fresh, registry.transformers)
    opened = await open_pools(fresh, registry, on_headers=relay, transformers=chains)
    return {config.name: kept.get(config.name) or opened[config.name] for config in settings.providers}


async def build_services(
    settings: Settings,
    registry: Registry,
    *,
    config_dir: Path,
    simulated: bool,
    version: str,
    previous: Services | None = None,
    extensions: Extensions | None = None,
) -> Services:
    """The services for ``settings``; with ``previous``, what it shares with them is taken over.
    ``config_dir`` holds the default SQLite ledger and an installed price table."""
    # Fails before anything is opened: a reload then keeps the running services.
    check_registered(settings, registry)
    background = _Background()
    if previous is None:
        windows = open_windows(settings.state)
        shared = (
            SharedLive(windows, settings.state.key_prefix) if isinstance(windows, SyncedWindows) else None
        )
        if shared is not None:
            shared.start()
        alert_state = open_alert_state(settings.state)
        ledger = make_store(settings.store, config_dir)
        await ledger.open()
        directory = KeyDirectory(
            ledger,
            settings.server.keys,
            redis_url=settings.state.redis_url,
            prefix=settings.state.key_prefix,
        )
        verifier: JwtVerifier | None = None
        if settings.server.jwt is not None:
            # PyJWT and cryptography load only for a gateway that verifies tokens (~10 MB otherwise).
            from ccrouter.auth.jwt import JwtVerifier

            verifier = JwtVerifier(settings.server.jwt)
        try:
            await directory.start()
            if verifier is not None:
                await verifier.start()
        except BaseException:
            await directory.aclose()
            await ledger.close()
            await alert_state.aclose()
            raise
        counter = TokenCounter()
        # The encoding loads (~0.3 s) in a thread while the gateway starts answering: routing counts
        # exactly only near a threshold, and whatever needs it first waits for the same load.
        background.warming = asyncio.create_task(counter.warm())
        background.warming.add_done_callback(_report_warm_failure)
    else:
        windows, ledger, counter = previous.windows, previous.ledger, previous.counter
        shared = previous.shared
        directory, verifier = previous.directory, previous.verifier
        alert_state = previous.alert_state
        background.warming = previous._background.warming
    live = LiveState(settings, windows, shared=shared)
    if previous is not None:
        live.carry_from(previous.live)
    relay = previous._relay if previous is not None and previous._relay is not None else _HeadersRelay(live)
    pools: ProviderPools = {}
    try:
        files = await asyncio.to_thread(_read_files, settings, config_dir, previous)
        pools = await _pools_for(settings, registry, previous, relay)
        return _assemble(
            settings,
            registry,
            extensions if extensions is not None else Extensions.build(registry, settings),
            previous,
            files,
            live=live,
            windows=windows,
            shared=shared,
            ledger=ledger,
            directory=directory,
            verifier=verifier,
            alert_state=alert_state,
            counter=counter,
            pools=pools,
            relay=relay,
            background=background,
            config_dir=config_dir,
            simulated=simulated,
            version=version,
        )
    except BaseException:
        kept = {id(pool) for pool in previous.pools.values()} if previous is not None else set()
        await close_pools({name: pool for name, pool in pools.items() if id(pool) not in kept})
        if previous is None:
            if verifier is not None:
                await verifier.aclose()
            await directory.aclose()
            await ledger.close()
            if shared is not None:
                await shared.aclose()
            await windows.aclose()
            await alert_state.aclose()
        raise


@dataclass(frozen=True, slots=True)
class _Files:
    """What building the services reads from disk or imports (done in a thread)."""

    catalog: Catalog
    prices: PriceTable


def _read_files(settings: Settings, config_dir: Path, previous: Services | None) -> _Files:
    return _Files(
        catalog=previous.catalog if previous is not None else Catalog.load(),
        prices=PriceTable.load(settings.prices, config_dir),
    )


def _assemble(
    settings: Settings,
    registry: Registry,
    extensions: Extensions,
    previous: Services | None,
    files: _Files,
    *,
    live: LiveState,
    windows: WindowStore,
    shared: SharedLive | None,
    ledger: Store,
    directory: KeyDirectory,
    verifier: JwtVerifier | None,
    alert_state: LocalAlertState | RedisAlertState,
    counter: TokenCounter,
    pools: ProviderPools,
    relay: _HeadersRelay,
    background: _Background,
    config_dir: Path,
    simulated: bool,
    version: str,
) -> Services:
    """Everything derived from the settings, on top of the pools and stores."""
    catalog, prices = files.catalog, files.prices
    sessions = previous.sessions if previous is not None else SessionUsage()
    session_log = previous.session_log if previous is not None else SessionLog()
    estimates = previous.estimates if previous is not None else InputEstimates()
    # Counters keep counting across reloads; only the sources read at scrape time change (activate).
    metrics = previous.metrics if previous is not None else GatewayMetrics([live])
    # The scenario rules come from the plugins (built-ins first; router.custom is one of them).
    router = Router(settings, catalog, counter, sessions, rules=extensions.rules, owner=extensions.owner)
    cost_hook = CostHook(settings, prices)
    budgets = BudgetAdmission(settings, ledger, counter, prices, estimates)
    client_limits = ClientLimits(settings, windows)
    providers: dict[str, Provider] = {name: next(iter(pool.values())) for name, pool in pools.items()}
    auditor = previous.auditor if previous is not None else Auditor(ledger)
    # A change takes effect here at once and is announced to the other instances (Redis, else they
    # poll the store).
    key_manager = KeyManager(
        ledger, auditor, settings.server.keys, on_change=directory.changed, last_used=directory.last_used
    )
    recent = _recent_window(settings, previous)
    traffic = previous.traffic if previous is not None else TrafficRecorder()
    context = ObserverContext(
        settings, ledger, cost_hook, counter, estimates, metrics, recent, session_log, traffic
    )
    observers = tuple(item for _, item in collect_observers(registry, context))
    dispatcher = Dispatcher(
        settings,
        providers,
        router,
        catalog,
        sessions,
        # Client limits first: a request over its rpm is refused before a budget reserves for it.
        admission=Admissions((client_limits, budgets)),
        usage_hooks=[cost_hook],
        pools=pools,
        live=live,
        prices=prices,
        strategy=strategy_named(registry.strategies, settings.routing),
        pre_dispatch=extensions.pre_dispatch,
        owner=extensions.owner,
        profile_strategies=_profile_strategies(settings, registry),
        target_steps=extensions.target_steps,
        routes=client_limits,
        observers=observers,
    )
    alerter = _alerter(settings, recent, live, budgets, extensions, previous, alert_state)
    if settings.routing.health_checks:
        background.health = HealthChecker(settings, pools, live)
    return Services(
        settings=settings,
        registry=registry,
        extensions=extensions,
        version=version,
        loaded_at=time.time(),
        started_at=previous.started_at if previous is not None else time.time(),
        simulated=simulated,
        config_dir=config_dir,
        dispatcher=dispatcher,
        router=router,
        live=live,
        windows=windows,
        pools=pools,
        catalog=catalog,
        counter=counter,
        sessions=sessions,
        session_log=session_log,
        ledger=ledger,
        prices=prices,
        budgets=budgets,
        estimates=estimates,
        metrics=metrics,
        redactor=Redactor(secrets_of(settings)),
        observers=observers,
        end_observers=tuple(item for item in observers if isinstance(item, EndObserver)),
        alerter=alerter,
        recent=recent,
        decode_cache=previous.decode_cache if previous is not None else DecodeCache(),
        openai_decode_cache=previous.openai_decode_cache if previous is not None else DecodeCache(),
        heap=previous.heap if previous is not None else HeapTrimmer(),
        large=previous.large if previous is not None else LargeBodies(),
        authenticator=Authenticator(settings.server, directory=directory, verifier=verifier, clock=time.time),
        directory=directory,
        verifier=verifier,
        auditor=auditor,
        key_manager=key_manager,
        ui_sessions=session_codec(settings.server.ui),
        traffic=traffic,
        shared=shared,
        alert_state=alert_state,
        _relay=relay,
        _background=background,
    )


def _alerter(
    settings: Settings,
    recent: RecentRequests | None,
    live: LiveState,
    budgets: BudgetAdmission,
    extensions: Extensions,
    previous: Services | None,
    state: LocalAlertState | RedisAlertState,
) -> Alerter | None:
    if recent is None:
        return None
    old = previous.alerter if previous is not None else None
    return Alerter(
        settings.alerts,
        recent,
        [live],
        budgets,
        extensions.alert_channels,
        # Alerts already announced stay announced (``state`` is shared): a reload neither repeats
        # nor forgets them, nor when they started.
        state=state,
        _since=old._since if old is not None else {},
    )


def _recent_window(settings: Settings, previous: Services | None) -> RecentRequests | None:
    alerts = settings.alerts
    if not alerts.enabled:
        return None
    old = previous.recent if previous is not None else None
    if old is not None and previous is not None and previous.settings.alerts.window_s == alerts.window_s:
        return old
    return RecentRequests(alerts.window_s)


def activate(services: Services) -> None:
    """Start serving on ``services``: announced limits and scrape-time views read its live state,
    its health checks and alert loop run."""
    if services._relay is not None:
        services._relay.live = services.live
    services.metrics.use([services.live], services.budgets)
    if services.shared is not None:
        services.shared.attach(services.live, services.sessions)
    background = services._background
    if background.health is not None:
        background.health.start()
    if services.alerter is not None and background.alerts is None:
        background.alerts = asyncio.create_task(services.alerter.run(), name="ccrouter-alerts")


async def stop_background(services: Services) -> None:
    """Stop what ``activate`` started (at a reload, as soon as the successor takes over)."""
    background = services._background
    if background.health is not None:
        await background.health.stop()
    if background.alerts is not None:
        background.alerts.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await background.alerts


async def close_services(services: Services, still_serving: Sequence[Services] = ()) -> None:
    """Close what ``services`` holds for its configuration and none of ``still_serving`` shares:
    its background work, the pools of removed or changed providers, its alert channels."""
    await stop_background(services)
    pools = {id(pool) for other in still_serving for pool in other.pools.values()}
    await close_pools({name: pool for name, pool in services.pools.items() if id(pool) not in pools})
    channels = {id(channel) for other in still_serving for channel in other.extensions.alert_channels}
    for channel in services.extensions.alert_channels:
        if id(channel) not in channels:
            await _close_channel(channel)


async def close_stores(services: Services) -> None:
    """At shutdown, after ``close_services``: what every configuration shared."""
    await services.auditor.aclose()
    await services.directory.aclose()  # writes the last-use times it holds
    if services.verifier is not None:
        await services.verifier.aclose()
    if services.shared is not None:
        await services.shared.aclose()
    await services.windows.aclose()
    # Another instance takes the alerts over at once rather than when the lease expires.
    await services.alert_state.release()
    await services.alert_state.aclose()
    await services.ledger.close()  # flushes every queued row
    warming = services._background.warming
    if warming is not None:
        await asyncio.gather(warming, return_exceptions=True)


async def _close_channel(channel: Sender) -> None:
    close = getattr(channel, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:  # the boundary: a plugin's channel failing to close must not stop the rest
            log.exception("closing alert channel %r failed", channel)
