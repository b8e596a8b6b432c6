"""The HTTP connection handling under the app: what aiohttp answers before any middleware runs.

aiohttp parses each request head in its protocol (``RequestHandler``) and answers a head it cannot
take with a plain-text 400 from ``handle_error``, whose text repeats the first ~100 bytes of the
offending line: for an oversized ``x-api-key``, the key's start. A half-sent head is held until the
keep-alive timeout (75 s under ``run_app``) without an answer. ``GatewayProtocol`` answers both in the
client's envelope: 431 for a head too large or with too many headers, 400 for any other malformed
head (never echoing it), 408 when a head has not arrived ``server.header_timeout_s`` after its first
byte.

aiohttp builds its protocol class in ``Server.__call__`` and the ``Server`` in
``Application._make_handler``, the one seam that both ``web.run_app`` (``ccrouter serve``) and the test
harness's ``TestServer`` pass through: ``use_gateway_protocol`` wraps it, so tests exercise the same
connection handling as the served gateway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from ccrouter.api.endpoints import ENDPOINTS, Envelope
from ccrouter.api.errors import error_body, error_response
from ccrouter.api.throttle import OncePer
from ccrouter.config import ServerConfig

__all__ = ["GatewayProtocol", "handler_args", "use_gateway_protocol"]

log = logging.getLogger("ccrouter.api")

_HEAD_TOO_LARGE = "request header fields too large: the gateway takes heads of at most {} bytes a line"
_TOO_MANY_HEADERS = "request header fields too large: too many header fields"
_MALFORMED = "malformed HTTP request head"
_HEAD_TIMEOUT = "request head not received within server.header_timeout_s ({} s)"


def handler_args() -> dict[str, Any]:
    """The protocol settings every runner of the app gets (``web.Application(handler_args=...)``)."""
    # Compressed bodies are inflated by ``ccrouter.api.inflate`` once the client is authenticated,
    # not by the parser as they arrive.
    return {"auto_decompress": False}


class GatewayProtocol(RequestHandler):
    """aiohttp's protocol with our answers to malformed and slow request heads."""

    def __init__(
        self,
        manager: web.Server,
        *,
        header_timeout: float,
        envelope_of: Callable[[str], Envelope],
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = header_timeout
        self._envelope_of = envelope_of
        self._head_timer: asyncio.TimerHandle | None = None
        # The payload of the last head parsed: while it is being received, bytes are body, not head.
        self._body: StreamReader | None = None
        # The envelope of the endpoint whose head is being read, for an error about it (aiohttp hands
        # ``handle_error`` a placeholder request without the path).
        self._envelope: Envelope = "anthropic"

    def data_received(self, data: bytes) -> None:
        starting = bool(data) and self._head_timer is None and (self._body is None or self._body.is_eof())
        if starting:
            self._envelope = self._envelope_of(_request_path(data))
        heads = self._request_count
        super().data_received(data)
        if self._request_count != heads:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            self._body = self._messages[-1][1] if self._messages else None
        elif starting:
            # A head that did not come whole in its first read (almost every head does: no timer
            # then) must be complete within the header timeout of that first byte.
            self._head_timer = self._loop.call_later(self._header_timeout, self._head_timed_out)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        transport = self.transport
        if transport is None or self._force_close:
            return
        if not self._request_in_progress and not self._messages:
            # Nothing else is being answered on this connection: the 408 is the next bytes it gets.
            body = error_body(
                self._envelope, "invalid_request_error", _HEAD_TIMEOUT.format(self._header_timeout), 408
            )
            head = (
                "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
            )
            transport.write(head.encode() + body)
        self.force_close()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            return super().handle_error(request, status, exc, message)  # raises: the response has begun
        # A parse error comes with a placeholder request (method UNKNOWN, path /).
        envelope = self._envelope if request.method == "UNKNOWN" else self._envelope_of(request.path)
        if isinstance(exc, LineTooLong):
            status, text = 431, _HEAD_TOO_LARGE.format(self.max_field_size)
        elif isinstance(exc, BadHttpMessage) and "Too many" in str(exc):
            status, text = 431, _TOO_MANY_HEADERS
        elif status == 400:
            text = _MALFORMED
        elif status == 504:
            text = "the request timed out inside the gateway"
        else:
            self.log_exception("error handling %s %s", request.method, request.path, exc_info=exc)
            text = "internal error in ccrouter (see its log)"
        manager = self._manager
        if status < 500 and (
            not isinstance(manager, _GatewayServer) or manager.log_once(request.remote or "")
        ):
            # The exception's text may quote the client's bytes (a key): only its kind is logged, and
            # at most once a minute per address (a flood of bad heads must not fill the log).
            log.info("rejected a request head from %s: %s", request.remote, type(exc).__name__)
        error_type = "invalid_request_error" if status < 500 else "api_error"
        response = error_response(envelope, status, error_type, text)
        response.force_close()
        return response


class _GatewayServer(web.Server):
    """aiohttp's ``Server`` (the protocol factory) making ``GatewayProtocol`` connections."""

    def __init__(
        self, base: web.Server, header_timeout: float, envelope_of: Callable[[str], Envelope]
    ) -> None:
        super().__init__(
            base.request_handler,
            request_factory=base.request_factory,
            handler_cancellation=base.handler_cancellation,
            loop=base._loop,
            **base._kwargs,
        )
        self._header_timeout = header_timeout
        self._envelope_of = envelope_of
        self.log_once = OncePer(60.0)

    def __call__(self) -> RequestHandler:
        return GatewayProtocol(
            self,
            loop=self._loop,
            header_timeout=self._header_timeout,
            envelope_of=self._envelope_of,
            **self._kwargs,
        )


def use_gateway_protocol(app: web.Application, server: ServerConfig) -> None:
    """Serve ``app``'s connections with ``GatewayProtocol``, under any runner."""
    make_handler = app._make_handler

    def make(**kwargs: Any) -> web.Server:
        # Called when a runner starts, once ``create_app`` has put the endpoint table on the app.
        table = app[ENDPOINTS]
        return _GatewayServer(make_handler(**kwargs), server.header_timeout_s, table.envelope)

    app._make_handler = make  # type: ignore[method-assign]


def _request_path(data: bytes) -> str:
    """The path of a request line's first bytes (``POST /v1/messages?beta=true HTTP/1.1``), or ``/``."""
    start = data.find(b" ", 0, 16) + 1
    end = data.find(b" ", start, start + 256) if start else -1
    if end < 0:
        return "/"
    return data[start:end].split(b"?", 1)[0].decode("latin-1")
