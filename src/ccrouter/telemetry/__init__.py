"""Telemetry: Prometheus metrics, structured logs, alerts, and secret scrubbing (see ``context`` for
how the app wires them)."""

from __future__ import annotations

from ccrouter.telemetry.logging import RequestLog, setup_logging
from ccrouter.telemetry.metrics import GatewayMetrics
from ccrouter.telemetry.redact import Redactor, secrets_of

__all__ = ["GatewayMetrics", "Redactor", "RequestLog", "secrets_of", "setup_logging"]
