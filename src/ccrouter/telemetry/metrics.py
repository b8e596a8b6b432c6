"""Prometheus metrics over a registry the app owns (never the process-global default registry).

``GatewayMetrics`` is an ``Observer``: every finished exchange updates the request, latency, token,
cost and error series. Live state (rate-limit headroom, breakers, provider health, budgets) is read at
scrape time from the ``ccrouter.status`` sources by a custom collector, so nothing pushes into it.
Labels are bounded (configured providers and models, the endpoint names of ``ccrouter.api.endpoints``
or ``other``, status codes, error types) and never carry a key, a user's secret or a client-chosen value.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ccrouter import __version__
from ccrouter.exchange import Exchange
from ccrouter.status import BudgetStatus, BudgetStatusSource, ProviderStatus, ProviderStatusSource

__all__ = ["CONTENT_TYPE", "LATENCY_BUCKETS", "GatewayMetrics"]

log = logging.getLogger("ccrouter.telemetry")

# Text exposition format 0.0.4, which every Prometheus version scrapes.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# LLM calls run from tens of milliseconds (count_tokens, cache hits) to minutes (long generations).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 180.0, 300.0)
# A wait for a free connection of a provider's pool: from a fraction of a millisecond (a burst) to
# timeouts.first_byte (120 s by default).
POOL_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_BREAKER_STATES = ("closed", "open", "half_open")
_TOKEN_KINDS = ("input", "output", "cache_read", "cache_write")


class GatewayMetrics:
    """The gateway's metrics. ``status_sources`` and ``budget_source`` are read at scrape time."""

    def __init__(
        self,
        status_sources: Sequence[ProviderStatusSource] = (),
        budget_source: BudgetStatusSource | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._budget_source = budget_source
        self._in_flight: dict[str, Gauge] = {}
        self._series: dict[tuple[str, str, str, int], tuple[Counter, Histogram, Histogram]] = {}
        self._tokens: dict[tuple[str, str, str], Counter] = {}
        self._latency: dict[tuple[str, str, str], Histogram] = {}
        self._cost: dict[tuple[str, str], Counter] = {}
        self._live = _LiveCollector(status_sources)
        reg = self.registry
        self.requests = Counter(
            "ccr_requests", "Finished API requests.", ["route", "provider", "model", "status"], registry=reg
        )
        self.request_duration = Histogram(
            "ccr_request_duration_seconds",
            "Whole request time as the client saw it (to the last byte of a stream).",
            ["route", "provider", "model"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.provider_latency = Histogram(
            "ccr_provider_latency_seconds",
            "Time of each provider call (first try and fallbacks), by outcome.",
            ["provider", "model", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.first_byte = Histogram(
            "ccr_time_to_first_byte_seconds",
            "Streamed requests: time until the first event reached the client.",
            ["route", "provider", "model"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.tokens = Counter(
            "ccr_tokens", "Tokens billed, by kind.", ["provider", "model", "kind"], registry=reg
        )
        self.cost = Counter("ccr_cost_usd", "Cost in US dollars.", ["provider", "model"], registry=reg)
        self.errors = Counter(
            "ccr_errors",
            "Requests that ended in an error (status >= 400 or an error mid-stream), by error type.",
            ["route", "provider", "error_type"],
            registry=reg,
        )
        self.provider_errors = Counter(
            "ccr_provider_errors",
            "Failed provider calls (including ones a fallback recovered), by error type.",
            ["provider", "model", "error_type"],
            registry=reg,
        )
        # -- speed and scale (issue 17): calls that found their provider's connection pool full.
        self.pool_waits = Counter(
            "ccr_pool_waits",
            "Provider calls that found every connection of the provider's pool in use, by how they "
            "went on: waited (then got one), failed_over (went to the next candidate at once), "
            "timed_out (no free connection within timeouts.first_byte).",
            ["provider", "outcome"],
            registry=reg,
        )
        self.pool_wait = Histogram(
            "ccr_pool_wait_seconds",
            "Time provider calls waited for a free connection of the provider's pool (calls that "
            "found it full).",
            ["provider"],
            buckets=POOL_WAIT_BUCKETS,
            registry=reg,
        )
        self.fallbacks = Counter(
            "ccr_fallbacks", "Requests that needed more than one provider call.", ["route"], registry=reg
        )
        self.in_flight = Gauge(
            "ccr_in_flight_requests", "API requests being served now.", ["route"], registry=reg
        )
        # Refused before authentication (missing/invalid key or admin token, throttled address):
        # counted here instead of a ledger row each. ``reason`` is one of a few fixed strings.
        self.auth_failures = Counter(
            "ccr_auth_failures", "Requests refused by authentication.", ["reason"], registry=reg
        )
        info = Gauge("ccr_build_info", "ccrouter's version (always 1).", ["version"], registry=reg)
        info.labels(__version__).set(1)
        reg.register(self._live)

    def use(
        self, status_sources: Sequence[ProviderStatusSource], budget_source: BudgetStatusSource | None
    ) -> None:
        """Read these sources at scrape time from now on (a configuration reload); counters go on."""
        self._live.sources = status_sources
        self._budget_source = budget_source

    def in_flight_for(self, endpoint: str) -> Gauge:
        """The in-flight gauge of ``endpoint``'s route: ``inc()`` when a request starts, ``dec()``
        when it ends. ``endpoint`` is an exchange's: an endpoint table's name, or ``other``."""
        route = endpoint
        gauge = self._in_flight.get(route)
        if gauge is None:
            gauge = self._in_flight[route] = self.in_flight.labels(route)
        return gauge

    def auth_failure(self, reason: str) -> None:
        self.auth_failures.labels(reason).inc()

    def on_exchange(self, exchange: Exchange) -> None:
        # The route label is the exchange's endpoint name: the API layer gives every request one of
        # the endpoint table's names or "other", which bounds the label.
        route = exchange.endpoint
        provider = exchange.provider or ""
        model = exchange.model or ""
        # ``labels()`` takes a lock and builds a key per call; each series' child is looked up once.
        key = (route, provider, model, exchange.status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (
                self.requests.labels(route, provider, model, str(exchange.status)),
                self.request_duration.labels(route, provider, model),
                self.first_byte.labels(route, provider, model),
            )
        requests, duration, first_byte = series
        requests.inc()
        if exchange.duration_s is not None:
            duration.observe(exchange.duration_s)
        if exchange.first_byte_s is not None:
            first_byte.observe(exchange.first_byte_s)
        for attempt in exchange.attempts:
            outcome = attempt.error_type or "ok"
            key3 = (attempt.provider, attempt.model, outcome)
            latency = self._latency.get(key3)
            if latency is None:
                latency = self._latency[key3] = self.provider_latency.labels(*key3)
            latency.observe(attempt.duration_s)
            if attempt.error_type is not None:
                self.provider_errors.labels(attempt.provider, attempt.model, attempt.error_type).inc()
            if attempt.pool_outcome is not None:
                self.pool_waits.labels(attempt.provider, attempt.pool_outcome).inc()
                if attempt.pool_wait_s is not None and attempt.pool_outcome != "failed_over":
                    self.pool_wait.labels(attempt.provider).observe(attempt.pool_wait_s)
        if len(exchange.attempts) > 1:
            self.fallbacks.labels(route).inc()
        if exchange.status >= 400 or exchange.error_type is not None:
            self.errors.labels(route, provider, exchange.error_type or "unknown").inc()
        usage = exchange.usage
        if usage is not None:
            counts = (
                usage.input_tokens,
                usage.output_tokens,
                usage.cache_read_input_tokens,
                usage.cache_creation_input_tokens,
            )
            for kind, count in zip(_TOKEN_KINDS, counts, strict=True):
                if count:  # a series appears with its first token
                    key3 = (provider, model, kind)
                    child = self._tokens.get(key3)
                    if child is None:
                        child = self._tokens[key3] = self.tokens.labels(provider, model, kind)
                    child.inc(count)
        if exchange.cost_usd:
            cost = self._cost.get((provider, model))
            if cost is None:
                cost = self._cost[(provider, model)] = self.cost.labels(provider, model)
            cost.inc(exchange.cost_usd)

    async def render(self) -> bytes:
        """The exposition text. Budgets are read first (their source is async); a failing source
        leaves its gauges out of this scrape rather than failing it."""
        budgets: list[BudgetStatus] = []
        if self._budget_source is not None:
            try:
                budgets = await self._budget_source.budget_statuses()
            except Exception:  # the boundary: a store outage must not take the whole scrape down
                log.exception("metrics: reading budget status failed")
        self._live.budgets = budgets
        return generate_latest(self.registry)


class _LiveCollector(Collector):
    """Gauges computed at scrape time from the status sources."""

    def __init__(self, sources: Sequence[ProviderStatusSource]) -> None:
        self.sources = sources
        self.budgets: list[BudgetStatus] = []

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        labels = ["provider", "model"]
        headroom = GaugeMetricFamily(
            "ccr_provider_headroom_ratio", "Share of the tightest known rate limit still free.", labels=labels
        )
        health = GaugeMetricFamily(
            "ccr_provider_health_score", "Routing health score, 0 (down) to 1 (healthy).", labels=labels
        )
        cooldown = GaugeMetricFamily(
            "ccr_provider_cooldown_seconds", "Seconds until a rate-limit cooldown ends.", labels=labels
        )
        breaker = GaugeMetricFamily(
            "ccr_provider_breaker_state",
            "Circuit breaker state (1 for the current one).",
            labels=[*labels, "state"],
        )
        for status in self._provider_statuses():
            key = [status.provider, status.model]
            headroom.add_metric(key, status.headroom)
            health.add_metric(key, status.health_score)
            cooldown.add_metric(key, status.cooldown_s)
            for state in _BREAKER_STATES:
                breaker.add_metric([*key, state], 1.0 if status.breaker == state else 0.0)
        yield from (headroom, health, cooldown, breaker)
        yield from self._budget_families()

    def _provider_statuses(self) -> Iterator[ProviderStatus]:
        for source in self.sources:
            try:
                statuses = source.provider_statuses()
            except Exception:  # the boundary: one broken source must not take the whole scrape down
                log.exception("metrics: reading provider status failed")
                continue
            yield from statuses

    def _budget_families(self) -> Iterator[Metric]:
        labels = ["budget", "scope", "period", "action"]
        ratio = GaugeMetricFamily(
            "ccr_budget_used_ratio", "Share of the budget spent this period.", labels=labels
        )
        used = GaugeMetricFamily("ccr_budget_used_usd", "Spent this period, US dollars.", labels=labels)
        limit = GaugeMetricFamily("ccr_budget_limit_usd", "The budget's limit, US dollars.", labels=labels)
        for budget in self.budgets:
            key = [budget.name, budget.scope, budget.period, budget.action]
            ratio.add_metric(key, budget.used_usd / budget.limit_usd if budget.limit_usd > 0 else 0.0)
            used.add_metric(key, budget.used_usd)
            limit.add_metric(key, budget.limit_usd)
        yield from (ratio, used, limit)
