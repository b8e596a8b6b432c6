"""What the request handlers share, built once by the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from ccrouter.api.heap import HeapTrimmer
from ccrouter.api.large import LargeBodies
from ccrouter.budgets import BudgetAdmission
from ccrouter.codecs.body import DecodeCache
from ccrouter.config import Settings
from ccrouter.dispatch import Dispatcher
from ccrouter.exchange import Observer
from ccrouter.plugins import Registry
from ccrouter.resilience.live import LiveState
from ccrouter.status import ProviderStatusSource
from ccrouter.store import Store
from ccrouter.telemetry.alerts import Alerter
from ccrouter.telemetry.metrics import GatewayMetrics
from ccrouter.telemetry.redact import Redactor
from ccrouter.tokens import TokenCounter

__all__ = ["REGISTRY", "STATE", "AppState"]


@dataclass(slots=True)
class AppState:
    settings: Settings
    dispatcher: Dispatcher
    counter: TokenCounter
    simulated: bool
    started_at: float
    # Decoded messages and tools of recent requests (agents resend their history every turn), one
    # cache per body format.
    decode_cache: DecodeCache = field(default_factory=DecodeCache)
    openai_decode_cache: DecodeCache = field(default_factory=DecodeCache)
    # Returns to the system what huge bodies grew the heap by (``ccrouter.api.heap``).
    heap: HeapTrimmer = field(default_factory=HeapTrimmer)
    # At most a few large bodies read and decoded at once (``ccrouter.api.large``).
    large: LargeBodies = field(default_factory=LargeBodies)
    observers: list[Observer] = field(default_factory=list)
    # -- usage ledger and budgets (issue 4)
    ledger: Store | None = None
    budgets: BudgetAdmission | None = None
    # -- routing and resilience (issue 3): live provider state, read by /health/providers.
    live: LiveState | None = None
    # -- telemetry (issue 4): metrics registry, status sources read at scrape time, secret scrubbing.
    metrics: GatewayMetrics | None = None
    status_sources: list[ProviderStatusSource] = field(default_factory=list)
    redactor: Redactor | None = None
    alerter: Alerter | None = None


STATE: web.AppKey[AppState] = web.AppKey("ccrouter_state", AppState)
# What the plugins registered (built-ins included), loaded once per process.
REGISTRY: web.AppKey[Registry] = web.AppKey("ccrouter_registry", Registry)
