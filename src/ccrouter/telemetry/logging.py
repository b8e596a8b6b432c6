"""Structured logs: structlog for our lines, the standard library's records (aiohttp, our modules)
routed through the same processors, so every line has one format.

JSON lines when the stream is not a terminal, a readable console format when it is. Every line passes
through a ``Redactor`` holding the configured secrets, so no key reaches the log even when an
upstream echoes it back in an error message. The request id (bound by the observe middleware as a
context variable) appears on every line logged while a request is served. ``RequestLog`` writes the
one line per finished request.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import orjson
import structlog
from aiohttp import web
from structlog.typing import EventDict, Processor, WrappedLogger

from ccrouter.config import Settings
from ccrouter.exchange import Exchange
from ccrouter.telemetry.logring import LogRing
from ccrouter.telemetry.redact import Redactor, secrets_of

__all__ = ["RequestLog", "exchange_fields", "log_bodies", "setup_logging"]

# Bodies logged for debugging are cut here: enough to see the shape of a 100 KB request.
_MAX_BODY_CHARS = 64 * 1024
# Marks the handler we install, so a second setup replaces it and leaves others' handlers alone.
_HANDLER_NAME = "ccrouter"


class _RedactFields:
    """Scrubs secrets out of every string field (before rendering: a secret holding characters that
    JSON escapes would not match in the rendered line)."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor

    def __call__(self, logger: WrappedLogger, name: str, event: EventDict) -> EventDict:
        return {k: self._redactor.value(v) for k, v in event.items()}


class _RedactLine:
    """Scrubs the rendered line too: the console renderer formats tracebacks itself."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor

    def __call__(self, logger: WrappedLogger, name: str, line: Any) -> Any:
        return self._redactor.text(line) if isinstance(line, str) else line


def _dumps(value: Any, **_: Any) -> str:
    return orjson.dumps(value, default=str).decode()


class _KeepLine:
    """Adds the rendered (and redacted) JSON line to the ring, and passes it on unchanged."""

    def __init__(self, ring: LogRing) -> None:
        self._add = ring.add

    def __call__(self, logger: WrappedLogger, name: str, line: Any) -> Any:
        if isinstance(line, str):
            self._add(line)
        return line


class _KeepRecord:
    """With the console renderer: adds the (redacted) record to the ring as the JSON line it would
    have been, traceback formatted as ``format_exc_info`` does; the record goes on unchanged."""

    def __init__(self, ring: LogRing, redactor: Redactor) -> None:
        self._add = ring.add
        self._redactor = redactor

    def __call__(self, logger: WrappedLogger, name: str, event: EventDict) -> EventDict:
        record = event
        if event.get("exc_info"):
            record = structlog.processors.format_exc_info(logger, name, dict(event))
            record["exception"] = self._redactor.value(record.get("exception"))
        self._add(_dumps(record))
        return event


def setup_logging(
    settings: Settings,
    *,
    stream: TextIO | None = None,
    secrets: Iterable[str] | None = None,
    ring: LogRing | None = None,
) -> logging.Handler:
    """Configure structlog and the root logger (a process-wide choice, made once by ``serve``).
    ``secrets``: values to scrub (default: every secret in ``settings``). ``ring``: also keeps every
    line written, as JSON, there (``GET /api/logs``). Returns the handler."""
    out = stream if stream is not None else sys.stderr
    config = settings.logging
    level = (config.level or settings.server.log_level).upper()
    console = config.format == "console" or (config.format == "auto" and out.isatty())
    redactor = Redactor(secrets if secrets is not None else secrets_of(settings))
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    tail: list[Processor]
    if console:
        # The console renderer formats exceptions itself (format_exc_info would make it warn).
        tail = [_RedactFields(redactor)]
        if ring is not None:
            tail.append(_KeepRecord(ring, redactor))
        tail.append(structlog.dev.ConsoleRenderer(colors=out.isatty()))
    else:
        tail = [
            structlog.processors.format_exc_info,
            _RedactFields(redactor),
            structlog.processors.JSONRenderer(serializer=_dumps),
        ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *tail,
            _RedactLine(redactor),
            *([_KeepLine(ring)] if ring is not None and not console else []),
        ],
    )
    handler = logging.StreamHandler(out)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    return handler


def exchange_fields(exchange: Exchange) -> dict[str, Any]:
    """The request line's fields: identity, route decision, attempts, usage, cost, outcome."""
    fields: dict[str, Any] = {
        "request_id": exchange.request_id,
        "route": exchange.endpoint,
        "status": exchange.status,
        "duration_ms": _ms(exchange.duration_s),
        "stream": exchange.stream,
        "scenario": exchange.scenario,
        "provider": exchange.provider,
        "model": exchange.model,
        "reason": exchange.route_reason,
        "requested_model": exchange.requested_model,
        "client_key_id": exchange.client_key_id,
        "user": exchange.user,
        "session_id": exchange.session_id,
    }
    if exchange.first_byte_s is not None:
        fields["first_byte_ms"] = _ms(exchange.first_byte_s)
    if exchange.attempts:
        fields["attempts"] = [
            {
                "provider": a.provider,
                "model": a.model,
                "status": a.status,
                "error_type": a.error_type,
                "duration_ms": _ms(a.duration_s),
            }
            for a in exchange.attempts
        ]
    if exchange.usage is not None:
        usage = exchange.usage
        fields["usage"] = {
            "input": usage.input_tokens,
            "output": usage.output_tokens,
            "cache_read": usage.cache_read_input_tokens,
            "cache_write": usage.cache_creation_input_tokens,
            "estimated": exchange.usage_estimated,
        }
    if exchange.cost_usd is not None:
        fields["cost_usd"] = exchange.cost_usd
    if exchange.error_type is not None:
        fields["error_type"] = exchange.error_type
        fields["error"] = exchange.error_message
    return fields


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


class RequestLog:
    """The ``Observer`` writing one line per finished request: info, warning for 4xx, error for 5xx
    and for streams that failed after the first byte. Bodies are never logged."""

    def __init__(self) -> None:
        self._log = structlog.stdlib.get_logger("ccrouter.request")
        self._stdlib = logging.getLogger("ccrouter.request")  # whose level gates the line (setup_logging)

    def on_exchange(self, exchange: Exchange) -> None:
        if exchange.status >= 500 or (exchange.error_type is not None and exchange.status < 400):
            level = logging.ERROR
        elif exchange.status >= 400:
            level = logging.WARNING
        else:
            level = logging.INFO
        if structlog.is_configured() and not self._stdlib.isEnabledFor(level):
            return  # filtered out by the configured level: do not build the line
        fields: MutableMapping[str, Any] = exchange_fields(exchange)
        self._log.log(level, "request", **fields)


async def log_bodies(request: web.Request, response: web.StreamResponse) -> None:
    """Debug lines with the request body (aiohttp keeps it once read) and a non-streamed response's."""
    log = structlog.stdlib.get_logger("ccrouter.bodies")
    if not log.isEnabledFor(logging.DEBUG):
        return
    body = await request.read() if request.body_exists else b""
    log.debug("request body", body=body[:_MAX_BODY_CHARS].decode("utf-8", "replace"))
    if isinstance(response, web.Response) and isinstance(response.body, bytes):
        log.debug("response body", body=response.body[:_MAX_BODY_CHARS].decode("utf-8", "replace"))
