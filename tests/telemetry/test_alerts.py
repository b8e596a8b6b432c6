"""Alerts: rules over recent traffic and live status, sent to a local webhook receiver on loopback,
once when they fire and once when they resolve."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ccrouter.app import create_app
from ccrouter.config import AlertsConfig, Settings
from ccrouter.exchange import Exchange
from ccrouter.status import BudgetStatus, ProviderStatus
from ccrouter.telemetry.alerts import Alerter, RecentRequests, RecentSummary, WebhookSender, p95
from ccrouter.telemetry.redact import Redactor
from ccrouter.testing import FakeUpstream, Fault


class Receiver:
    """A webhook receiver: records JSON bodies, answers the scripted statuses (then 200)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.arrived = asyncio.Event()
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self.server = TestServer(app, host="127.0.0.1", port=0)

    async def _hook(self, request: web.Request) -> web.Response:
        self.bodies.append(orjson.loads(await request.read()))
        self.arrived.set()
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    @property
    def url(self) -> str:
        return str(self.server.make_url("/hook"))


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    await recv.server.start_server()
    yield recv
    await recv.server.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Providers:
    def __init__(self) -> None:
        self.statuses = [ProviderStatus("up", "m", "closed", headroom=1.0, health_score=1.0)]

    def provider_statuses(self) -> list[ProviderStatus]:
        return self.statuses


class Budgets:
    def __init__(self) -> None:
        self.used = 1.0

    async def budget_statuses(self) -> list[BudgetStatus]:
        return [BudgetStatus("team", "global", "daily", 10.0, self.used, "block", 0.0)]


def _exchange(status: int, duration: float = 0.1, error_type: str | None = None) -> Exchange:
    exchange = Exchange(request_id="r", endpoint="messages")
    exchange.status, exchange.duration_s, exchange.error_type = status, duration, error_type
    return exchange


async def _alerter(receiver: Receiver, clock: Clock, **config: Any) -> tuple[Alerter, WebhookSender]:
    cfg = AlertsConfig(window_s=60, min_requests=4, **config)
    sender = WebhookSender(receiver.url, 5.0, Redactor([]))
    return Alerter(cfg, RecentRequests(cfg.window_s, clock), senders=[sender], clock=clock), sender


async def test_error_rate_fires_once_then_resolves(receiver: Receiver) -> None:
    clock = Clock()
    alerter, sender = await _alerter(receiver, clock, error_rate=0.5)
    for status in (200, 502, 429, 400):
        alerter.recent.on_exchange(_exchange(status))
    alerter.recent.on_exchange(_exchange(200, error_type="overloaded_error"))  # failed mid-stream
    assert [n.status for n in await alerter.evaluate()] == ["firing"]
    assert await alerter.evaluate() == []  # still active: not repeated
    clock.now += 61  # the failures leave the window
    assert [n.status for n in await alerter.evaluate()] == ["resolved"]
    await sender.aclose()
    firing, resolved = receiver.bodies
    assert firing["alert"] == "HighErrorRate"
    assert (firing["status"], firing["value"], firing["threshold"]) == ("firing", 0.6, 0.5)
    assert firing["summary"] == "60% of the last 5 requests failed (window 60s)"
    assert (resolved["status"], resolved["resolved_at"], resolved["started_at"]) == (
        "resolved",
        1061.0,
        1000.0,
    )


async def test_p95_latency_needs_enough_requests(receiver: Receiver) -> None:
    clock = Clock()
    alerter, sender = await _alerter(receiver, clock, p95_latency_s=10)
    for duration in (1, 1, 30):
        alerter.recent.on_exchange(_exchange(200, duration))
    assert await alerter.evaluate() == []  # 3 < min_requests
    alerter.recent.on_exchange(_exchange(200, 2))
    (notice,) = await alerter.evaluate()
    await sender.aclose()
    assert (notice.alert.name, notice.alert.value) == ("HighLatencyP95", 30.0)
    assert p95([float(n) for n in range(1, 101)]) == 95.0


async def test_provider_health_and_budget_alerts(receiver: Receiver) -> None:
    clock, providers, budgets = Clock(), Providers(), Budgets()
    alerter, sender = await _alerter(receiver, clock)
    alerter.status_sources, alerter.budget_source = [providers], budgets
    assert await alerter.evaluate() == []
    providers.statuses = [ProviderStatus("up", "m", "open", headroom=1.0, health_score=0.0)]
    budgets.used = 9.0
    fired = {n.alert.name: n.alert for n in await alerter.evaluate()}
    assert fired["ProviderUnhealthy"].labels == {"provider": "up", "model": "m"}
    assert fired["ProviderUnhealthy"].severity == "critical"
    assert fired["BudgetNearLimit"].summary == (
        "budget team (global, daily): $9.0000 of $10 spent (90%); action block"
    )
    budgets.used = 1.0
    assert [(n.status, n.alert.name) for n in await alerter.evaluate()] == [("resolved", "BudgetNearLimit")]
    await sender.aclose()
    assert len(receiver.bodies) == 3


async def test_failed_webhook_is_retried_at_the_next_evaluation(receiver: Receiver) -> None:
    clock, providers = Clock(), Providers()
    providers.statuses = [ProviderStatus("up", "m", "closed", headroom=1.0, health_score=0.1)]
    receiver.statuses = [500]
    alerter, sender = await _alerter(receiver, clock)
    alerter.status_sources = [providers]
    assert await alerter.evaluate() == []  # the receiver answered 500
    assert [n.status for n in await alerter.evaluate()] == ["firing"]
    assert await alerter.evaluate() == []
    await sender.aclose()
    assert [b["status"] for b in receiver.bodies] == ["firing", "firing"]


async def test_the_app_runs_the_alert_loop(receiver: Receiver) -> None:
    """A gateway whose only provider fails: the error-rate alert reaches the webhook, scrubbed."""
    async with FakeUpstream() as fake:
        fake.script(*[Fault("status", status=500) for _ in range(3)])
        settings = Settings.model_validate(
            {
                "providers": [
                    {
                        "name": "up",
                        "type": "anthropic",
                        "base_url": fake.url,
                        "api_key": "sk-alert-secret-1234",
                    }
                ],
                "router": {"default": "up,claude-sonnet-4-6"},
                "routing": {"auto_fallback": "off"},
                "alerts": {"webhook_url": receiver.url, "interval_s": 0.05, "min_requests": 3},
            }
        )
        server = TestServer(create_app(settings), host="127.0.0.1", port=0)
        await server.start_server()
        try:
            body = {
                "model": "claude-sonnet-4-6",
                "max_tokens": 8,
                "messages": [{"role": "user", "content": "x"}],
            }
            client = server.make_url("/v1/messages")
            async with aiohttp.ClientSession() as session:
                for _ in range(3):
                    async with session.post(client, json=body) as response:
                        assert response.status >= 500
            await asyncio.wait_for(_named(receiver, "HighErrorRate"), 10)
            await asyncio.wait_for(_named(receiver, "ProviderUnhealthy"), 10)
        finally:
            await server.close()
    alerts = {body["alert"]: body for body in receiver.bodies}
    assert alerts["HighErrorRate"]["value"] == 1.0
    # Every call failed, so the provider's health (resilience.healthscore) is 0 as well.
    assert alerts["ProviderUnhealthy"]["value"] == 0.0


async def _named(receiver: Receiver, alert: str) -> None:
    while not any(body["alert"] == alert for body in receiver.bodies):
        receiver.arrived.clear()
        await receiver.arrived.wait()


def test_recent_requests_summary_from_buckets_and_histogram() -> None:
    clock = Clock()
    recent = RecentRequests(60.0, clock)
    assert recent.snapshot() == RecentSummary(0, 0, None)
    rng = random.Random(5)
    durations = [rng.lognormvariate(0.0, 1.5) for _ in range(2_000)]
    for i, duration in enumerate(durations):
        recent.on_exchange(_exchange(502 if i % 4 == 0 else 200, duration))
    models = Exchange(request_id="m", endpoint="models")
    models.status, models.duration_s = 500, 99.0
    recent.on_exchange(models)  # listings are not counted
    summary = recent.snapshot()
    assert (summary.requests, summary.failed) == (2_000, 500)
    # The histogram has 10 bins per decade: its p95 is within one bin (x1.26) of the exact one.
    assert summary.p95_s is not None
    assert 1 / 1.26 < summary.p95_s / p95(durations) < 1.26
    clock.now += 60.0
    assert recent.snapshot() == RecentSummary(0, 0, None)
