"""``telemetry_context``: an aiohttp cleanup context registered after the app's lifespan. It adds the
metrics, request-log and alert observers to the ``AppState`` the lifespan built, runs the alert loop,
and stops it before the lifespan closes the stores it reads.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from ccrouter.api.state import STATE
from ccrouter.telemetry.alerts import Alerter, RecentRequests, Sender, WebhookSender
from ccrouter.telemetry.logging import RequestLog
from ccrouter.telemetry.metrics import GatewayMetrics
from ccrouter.telemetry.redact import Redactor, secrets_of

__all__ = ["telemetry_context"]


async def telemetry_context(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    settings = state.settings
    if not state.status_sources and state.live is not None:
        state.status_sources.append(state.live)
    redactor = Redactor(secrets_of(settings))
    state.redactor = redactor
    state.metrics = GatewayMetrics(state.status_sources, state.budgets)
    # After the ledger's observer: it may fill in estimated usage and the cost the metrics count.
    state.observers.append(state.metrics)
    if settings.logging.requests:
        state.observers.append(RequestLog())
    alerts = settings.alerts
    task: asyncio.Task[None] | None = None
    senders: list[Sender] = []
    webhook: WebhookSender | None = None
    if alerts.enabled:
        recent = RecentRequests(alerts.window_s)
        state.observers.append(recent)
        if alerts.webhook_url is not None:
            webhook = WebhookSender(alerts.webhook_url.get_secret_value(), alerts.webhook_timeout_s, redactor)
            senders.append(webhook)
        alerter = Alerter(alerts, recent, state.status_sources, state.budgets, senders)
        state.alerter = alerter
        task = asyncio.create_task(alerter.run(), name="ccrouter-alerts")
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if webhook is not None:
            await webhook.aclose()
