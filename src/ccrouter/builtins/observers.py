"""The built-in observers of finished exchanges and the built-in alert channel (the webhook).

Observers are told in the order registered here: the ledger's first, since it fills in the
estimated usage and the cost that the metrics and the request log then count; then the metrics,
the dashboard's live traffic, the request log line, the alerts' window of recent requests and the
statusline's session log.
"""

from __future__ import annotations

from collections.abc import Callable

from ccrouter.config import Settings
from ccrouter.exchange import Observer
from ccrouter.hookspecs import hookimpl
from ccrouter.services import ObserverContext
from ccrouter.store import DurableLedgerObserver, LedgerObserver
from ccrouter.telemetry.alerts import Sender, WebhookSender
from ccrouter.telemetry.logging import RequestLog
from ccrouter.telemetry.redact import Redactor, secrets_of
from ccrouter.telemetry.sessions import SessionObserver

__all__ = ["register_alert_channels", "register_observers"]


@hookimpl
def register_observers(register: Callable[[Observer], None], context: ObserverContext) -> None:
    store = context.settings.store
    if store.durable:  # -- issue 17: the row committed before the response ends
        register(
            DurableLedgerObserver(
                context.ledger,
                context.cost_hook,
                context.counter,
                context.estimates,
                timeout=store.durable_timeout_s,
            )
        )
    else:
        register(LedgerObserver(context.ledger, context.cost_hook, context.counter, context.estimates))
    register(context.metrics)
    register(context.traffic)  # -- the dashboard's Overview (issue 15)
    if context.settings.logging.requests:
        register(RequestLog())
    if context.recent is not None:
        register(context.recent)
    register(SessionObserver(context.session_log, context.cost_hook))


@hookimpl
def register_alert_channels(register: Callable[[Sender], None], settings: Settings) -> None:
    alerts = settings.alerts
    if alerts.enabled and alerts.webhook_url is not None:
        # Notices carry provider names and error messages: scrubbed of every configured secret.
        redactor = Redactor(secrets_of(settings))
        register(WebhookSender(alerts.webhook_url.get_secret_value(), alerts.webhook_timeout_s, redactor))
