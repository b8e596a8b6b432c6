"""Pieces every API handler shares: reading the JSON body, decision headers, streaming the events."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from ccrouter.api.observe import exchange_for
from ccrouter.api.state import STATE
from ccrouter.dispatch import Plan, header_value
from ccrouter.errors import CCRouterError, RequestTooLargeError, UpstreamProtocolError
from ccrouter.messages import MessageStart, Ping, StreamError, StreamEvent

__all__ = ["decision_headers", "read_body", "stream_events"]

log = logging.getLogger("ccrouter.api")

# Failures after the first byte are reported as this type: Claude Code retries overloaded_error.
MID_STREAM_ERROR_TYPE = "overloaded_error"


async def read_body(request: web.Request) -> bytes:
    """The request body's bytes, or a RequestTooLargeError over ``server.max_body_bytes``."""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        limit = request.app[STATE].settings.server.max_body_bytes
        raise RequestTooLargeError(
            f"request body is larger than the gateway's limit of {limit} bytes (server.max_body_bytes)"
        ) from exc


def decision_headers(plan: Plan, simulated: bool) -> dict[str, str]:
    decision = plan.decision
    headers = {
        "x-ccrouter-provider": decision.provider,
        "x-ccrouter-model": decision.model,
        "x-ccrouter-scenario": decision.scenario,
        # Routing and resilience (issue 3): dispatch overwrites both in ``exchange.response_headers``
        # once a candidate answers, naming the fallbacks it took.
        "x-ccrouter-fallbacks": "0",
        "x-ccrouter-route-reason": header_value(decision.reason),
    }
    if simulated:
        headers["x-ccrouter-simulated"] = "true: no real model was called; add a provider to the config"
    return headers


async def stream_events(
    request: web.Request,
    plan: Plan,
    batches: AsyncIterator[list[StreamEvent]],
    encode: Callable[[StreamEvent], bytes],
    headers: dict[str, str],
    *,
    closing: bytes = b"",
) -> web.StreamResponse:
    """Send the events as SSE, each upstream read's events in one write. Errors before the first event
    become a normal HTTP error (so clients retry 429/529 as usual); errors after it become an SSE
    ``error`` event, never a silent cut."""
    iterator = aiter(batches)
    try:
        # Raises before any byte is sent: the error middleware renders it as a plain HTTP error.
        first = await anext(iterator)
    except StopAsyncIteration:
        raise UpstreamProtocolError(
            f"{plan.decision.provider}: the stream ended before any event", provider=plan.decision.provider
        ) from None
    try:
        return await _relay(request, plan, first, iterator, encode, headers, closing)
    finally:
        close = getattr(iterator, "aclose", None)
        if close is not None:
            await close()


class _EventStream(web.StreamResponse):
    """An SSE response whose head goes out with its first events, in one write (aiohttp sends a
    ``StreamResponse``'s head at ``prepare`` unless told otherwise; ``web.Response`` coalesces).
    ``_relay`` writes the first events right after ``prepare``, so nothing waits for them."""

    _send_headers_immediately = False


async def _relay(
    request: web.Request,
    plan: Plan,
    first: list[StreamEvent],
    iterator: AsyncIterator[list[StreamEvent]],
    encode: Callable[[StreamEvent], bytes],
    headers: dict[str, str],
    closing: bytes,
) -> web.StreamResponse:
    exchange = exchange_for(request)
    response = _EventStream(
        status=200,
        headers={
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache",
            "x-accel-buffering": "no",
            "x-request-id": exchange.request_id,
            **headers,
            **exchange.response_headers,
        },
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    head = [encode(event) for event in first]
    if first and isinstance(first[0], MessageStart) and first[0].raw is None:
        # Anthropic sends a ping right after message_start; translated streams get one too.
        head.insert(1, encode(Ping()))
    await response.write(b"".join(head))
    exchange.first_byte_s = exchange.elapsed()
    try:
        async for batch in iterator:
            await response.write(b"".join([encode(event) for event in batch]))
    except CCRouterError as exc:
        exchange.error_type = exc.error_type
        exchange.error_message = exc.message
        log.warning("stream from %s failed after the first byte: %s", plan.decision.provider, exc.message)
        await response.write(encode(StreamError(error_type=MID_STREAM_ERROR_TYPE, message=exc.message)))
        await response.write_eof()
        return response
    if closing:
        await response.write(closing)
    await response.write_eof()
    return response
