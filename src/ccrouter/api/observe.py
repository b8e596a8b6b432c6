"""Opens an ``Exchange`` for each API request, tags it with a request id, and tells the observers
when the response is finished (status, duration), whatever the outcome. Also counts requests in
flight, binds the request id for every log line, and scrubs configured secrets out of error bodies."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
from collections.abc import Sequence

import orjson
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from ccrouter.api.endpoints import ENDPOINTS, OTHER
from ccrouter.api.state import GATEWAY, SERVICES
from ccrouter.auth.roles import Principal
from ccrouter.errors import anthropic_error_type
from ccrouter.exchange import EndObserver, Exchange, Observer
from ccrouter.telemetry.logging import log_bodies
from ccrouter.telemetry.redact import Redactor

__all__ = [
    "API_REQUEST",
    "CLIENT_PREFIXES",
    "EXCHANGE",
    "PRINCIPAL",
    "REJECTED",
    "exchange_for",
    "observe_middleware",
]

log = logging.getLogger("ccrouter.api")

EXCHANGE: web.RequestKey[Exchange] = web.RequestKey("ccrouter_exchange", Exchange)
# Who the request is (``ccrouter.auth.middleware`` sets it once the credential checks out; absent on
# paths that need none, such as /health).
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("ccrouter_principal", Principal)
# Set (to the reason) on a request refused by authentication: it is counted in
# ccr_auth_failures_total, not recorded per request (no ledger row, no request log line), so that
# anyone who can reach the port cannot fill the ledger.
REJECTED: web.RequestKey[str] = web.RequestKey("ccrouter_rejected", str)
# Whether the request is API traffic (recorded, counted in flight, held by a drain): set once here.
API_REQUEST: web.RequestKey[bool] = web.RequestKey("ccrouter_api_request", bool)

# The model APIs' paths: Anthropic's and OpenAI's (/v1/), the Gemini API's (/v1beta/).
CLIENT_PREFIXES = ("/v1/", "/v1beta/")
# A client's request id is echoed only if it is a sane token (it ends up in logs and headers).
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


# nginx's status for "client closed the connection before the response was complete".
_CLIENT_CLOSED = 499


def exchange_for(request: web.Request) -> Exchange:
    return request[EXCHANGE]


@web.middleware
async def observe_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    given = request.headers.get("x-request-id", "")
    request_id = given if _REQUEST_ID.match(given) else f"req_{os.urandom(16).hex()}"
    # The endpoint's name is the closed label the ledger and the metrics carry; any other path is
    # "other", never the client-chosen path itself.
    endpoint = request.app[ENDPOINTS].match(request.path)
    exchange = Exchange(request_id=request_id, endpoint=endpoint.name if endpoint is not None else OTHER)
    request[EXCHANGE] = exchange
    state = request.app[GATEWAY].current
    request[SERVICES] = state
    # Recorded: every request an endpoint serves, and any other under /v1/ or /v1beta/ (a client's
    # wrong path).
    api = endpoint is not None or request.path.startswith(CLIENT_PREFIXES)
    request[API_REQUEST] = api
    # -- telemetry (issue 4): the request id on every log line written meanwhile; in-flight gauge.
    in_flight = state.metrics.in_flight_for(exchange.endpoint) if api else None
    if in_flight is not None:
        in_flight.inc()
    bound = structlog.contextvars.bind_contextvars(request_id=request_id)
    # The services this request started on are kept open until it ends (``ccrouter.reload``).
    state.users.enter()
    if api and state.end_observers:  # -- issue 17: ``store.durable``
        exchange.before_end = functools.partial(_before_end, state.end_observers, exchange)
    try:
        try:
            response: web.StreamResponse = await handler(request)
        except asyncio.CancelledError:
            # The client went away mid-request: still one record (usage may already be spent).
            exchange.status = _CLIENT_CLOSED
            exchange.error_type = exchange.error_type or "client_closed_request"
            exchange.duration_s = exchange.elapsed()
            if api and REJECTED not in request:
                for observer in state.observers:
                    observer.on_exchange(exchange)
            raise
        if not response.prepared:
            response.headers["x-request-id"] = request_id
            _error_body(response, state.redactor, exchange)
        exchange.status = response.status
        exchange.duration_s = exchange.elapsed()
        if exchange.status >= 400 and exchange.error_type is None:
            exchange.error_type = _error_type(exchange)
        if exchange.before_end is not None and not response.prepared and REJECTED not in request:
            await exchange.before_end()  # a whole answer: before aiohttp sends it
        if api and REJECTED not in request:
            # Ledger row, metrics, alerts and the log line once the response is on its way: aiohttp
            # writes it before this task next waits, and callbacks run only then.
            asyncio.get_running_loop().call_soon(_notify, state.observers, exchange)
            if state.settings.logging.bodies:
                await log_bodies(request, response)
    finally:
        structlog.contextvars.reset_contextvars(**bound)
        if in_flight is not None:
            in_flight.dec()
        state.users.leave()
    return response


async def _before_end(observers: Sequence[EndObserver], exchange: Exchange) -> None:
    """Once per exchange, whichever writer gets there first (a stream's end, or the middleware)."""
    exchange.before_end = None
    for observer in observers:
        try:
            await observer.before_end(exchange)
        except Exception:  # the boundary, as for ``_notify``: the response still ends
            log.exception(
                "observer %s failed before the end of %s", type(observer).__name__, exchange.request_id
            )


def _notify(observers: Sequence[Observer], exchange: Exchange) -> None:
    for observer in observers:
        try:
            observer.on_exchange(exchange)
        except Exception:  # the boundary: one failing observer must not silence the others
            log.exception("observer %s failed on %s", type(observer).__name__, exchange.request_id)


def _error_type(exchange: Exchange) -> str:
    """The failed provider call's error type, else the one the status stands for."""
    last = exchange.attempts[-1].error_type if exchange.attempts else None
    return last or anthropic_error_type(exchange.status)


def _error_body(response: web.StreamResponse, redactor: Redactor, exchange: Exchange) -> None:
    """An upstream may echo our provider key in its error message, which we pass on to the client:
    no configured secret leaves in an error body. The message is kept for the request's log line."""
    if response.status < 400 or not isinstance(response, web.Response):
        return
    body = response.body
    if not isinstance(body, bytes):
        return
    if redactor:
        body = redactor.bytes(body)
        response.body = body
    if exchange.error_message is None:
        exchange.error_message = _error_message(body)


def _error_message(body: bytes) -> str | None:
    """The message of an Anthropic or OpenAI error envelope (both put it at ``error.message``)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else None
