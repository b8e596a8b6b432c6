"""GatewayMetrics: exchanges in, Prometheus text out, read back with prometheus-client's parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from ccrouter import __version__
from ccrouter.exchange import Attempt, Exchange
from ccrouter.messages import Usage
from ccrouter.status import BudgetStatus, ProviderStatus
from ccrouter.telemetry.metrics import GatewayMetrics


class _Providers:
    def provider_statuses(self) -> list[ProviderStatus]:
        return [
            ProviderStatus("up", "m1", "closed", headroom=0.75, health_score=0.9),
            ProviderStatus("down", "m2", "open", headroom=1.0, health_score=0.0, cooldown_s=12.5),
        ]


class _Budgets:
    async def budget_statuses(self) -> list[BudgetStatus]:
        return [BudgetStatus("team", "global", "daily", 10.0, 8.5, "block", 0.0)]


def _samples(text: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def _exchange(**fields: object) -> Exchange:
    exchange = Exchange(request_id="r", endpoint="messages")
    for name, value in fields.items():
        setattr(exchange, name, value)
    return exchange


def _labels(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


async def test_exchanges_update_counters_and_histograms() -> None:
    metrics = GatewayMetrics()
    ok = _exchange(
        provider="up",
        model="m1",
        status=200,
        duration_s=1.2,
        first_byte_s=0.3,
        usage=Usage(input_tokens=100, output_tokens=20, cache_read_input_tokens=5),
        cost_usd=0.25,
        attempts=[Attempt("down", "m2", "api_error", 500, 0.04), Attempt("up", "m1", None, None, 1.1)],
    )
    metrics.on_exchange(ok)
    metrics.on_exchange(ok)
    metrics.on_exchange(
        _exchange(provider="up", model="m1", status=429, duration_s=0.2, error_type="rate_limit_error")
    )
    s = _samples(await metrics.render())
    assert s[("ccr_requests_total", _labels(route="messages", provider="up", model="m1", status="200"))] == 2
    assert s[("ccr_requests_total", _labels(route="messages", provider="up", model="m1", status="429"))] == 1
    assert s[("ccr_tokens_total", _labels(provider="up", model="m1", kind="input"))] == 200
    assert s[("ccr_tokens_total", _labels(provider="up", model="m1", kind="output"))] == 40
    assert s[("ccr_tokens_total", _labels(provider="up", model="m1", kind="cache_read"))] == 10
    assert ("ccr_tokens_total", _labels(provider="up", model="m1", kind="cache_write")) not in s
    assert s[("ccr_cost_usd_total", _labels(provider="up", model="m1"))] == 0.5
    assert (
        s[("ccr_errors_total", _labels(route="messages", provider="up", error_type="rate_limit_error"))] == 1
    )
    assert s[("ccr_provider_errors_total", _labels(provider="down", model="m2", error_type="api_error"))] == 2
    assert s[("ccr_fallbacks_total", _labels(route="messages"))] == 2
    duration = _labels(route="messages", provider="up", model="m1")
    assert s[("ccr_request_duration_seconds_count", duration)] == 3
    assert s[("ccr_request_duration_seconds_bucket", duration | {("le", "1.0")})] == 1
    assert s[("ccr_request_duration_seconds_bucket", duration | {("le", "2.5")})] == 3
    assert s[("ccr_time_to_first_byte_seconds_count", duration)] == 2
    latency = _labels(provider="down", model="m2", outcome="api_error")
    assert s[("ccr_provider_latency_seconds_bucket", latency | {("le", "0.05")})] == 2


async def test_live_gauges_are_read_at_scrape_time() -> None:
    metrics = GatewayMetrics([_Providers()], _Budgets())
    s = _samples(await metrics.render())
    assert s[("ccr_provider_headroom_ratio", _labels(provider="up", model="m1"))] == 0.75
    assert s[("ccr_provider_health_score", _labels(provider="down", model="m2"))] == 0.0
    assert s[("ccr_provider_cooldown_seconds", _labels(provider="down", model="m2"))] == 12.5
    assert s[("ccr_provider_breaker_state", _labels(provider="down", model="m2", state="open"))] == 1
    assert s[("ccr_provider_breaker_state", _labels(provider="down", model="m2", state="closed"))] == 0
    budget = _labels(budget="team", scope="global", period="daily", action="block")
    assert s[("ccr_budget_used_ratio", budget)] == 0.85
    assert s[("ccr_budget_limit_usd", budget)] == 10.0


async def test_in_flight_by_route() -> None:
    metrics = GatewayMetrics()
    gauge = metrics.in_flight_for("messages")
    gauge.inc()
    s = _samples(await metrics.render())
    assert s[("ccr_in_flight_requests", _labels(route="messages"))] == 1
    gauge.dec()
    s = _samples(await metrics.render())
    assert s[("ccr_in_flight_requests", _labels(route="messages"))] == 0


async def test_each_app_owns_its_registry() -> None:
    first, second = GatewayMetrics(), GatewayMetrics()
    first.on_exchange(_exchange(provider="up", model="m1", status=200, duration_s=0.1))
    s = _samples(await second.render())
    assert ("ccr_requests_total", _labels(route="messages", provider="up", model="m1", status="200")) not in s
    assert s[("ccr_build_info", _labels(version=__version__))] == 1
