"""Pieces every API handler shares: reading the JSON body, decision headers, streaming the events."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from ccrouter.api.inflate import inflate
from ccrouter.api.observe import exchange_for
from ccrouter.api.state import services_of
from ccrouter.dispatch import Plan, header_value
from ccrouter.errors import CCRouterError, RequestError, RequestTooLargeError, UpstreamProtocolError
from ccrouter.exchange import Exchange
from ccrouter.messages import MessageStart, MessageStop, Ping, StreamError, StreamEvent

__all__ = ["decision_headers", "read_body", "stream_events"]

log = logging.getLogger("ccrouter.api")

# Failures after the first byte are reported as this type: Claude Code retries overloaded_error.
MID_STREAM_ERROR_TYPE = "overloaded_error"


async def read_body(request: web.Request) -> bytes:
    """The request body's bytes, inflated if it came compressed (the client is authenticated by now),
    or a 413 over ``server.max_body_bytes``, a 408 when it has not arrived within
    ``server.body_timeout_s``."""
    server = services_of(request).settings.server
    try:
        if request.content.is_eof():  # all arrived with the head (most bodies): no timer to set
            body = await request.read()
        else:
            async with asyncio.timeout(server.body_timeout_s):
                body = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise RequestTooLargeError(
            f"request body is larger than the gateway's limit of {server.max_body_bytes} bytes "
            "(server.max_body_bytes)"
        ) from exc
    except TimeoutError:
        raise RequestError(
            f"request body not received within server.body_timeout_s ({server.body_timeout_s} s)", status=408
        ) from None
    encoding = request.headers.get("content-encoding")
    if encoding:
        body = await inflate(body, encoding, server.max_body_bytes)
    return body


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
    head = list(first)
    if first and isinstance(first[0], MessageStart) and first[0].raw is None:
        # Anthropic sends a ping right after message_start; translated streams get one too.
        head.insert(1, Ping())
    if exchange.before_end is not None:  # a short answer's first batch may hold its whole stream
        head = await _hold_stop(response, encode, exchange, head)
    await response.write(b"".join([encode(event) for event in head]))
    if exchange.first_byte_s is None:
        exchange.first_byte_s = exchange.elapsed()
    limit = services_of(request).settings.server.max_stream_s
    try:
        # The whole stream, counted from the request's start (None: no limit).
        async with asyncio.timeout(None if limit is None else limit - exchange.elapsed()):
            async for batch in iterator:
                if exchange.before_end is not None:
                    batch = await _hold_stop(response, encode, exchange, batch)
                await response.write(b"".join([encode(event) for event in batch]))
    except CCRouterError as exc:  # also an upstream timeout, which is a TimeoutError too
        log.warning("stream from %s failed after the first byte: %s", plan.decision.provider, exc.message)
        return await _end_with_error(response, encode, exchange, exc.error_type, exc.message)
    except TimeoutError:
        message = f"the stream exceeded the gateway's limit of {limit} s (server.max_stream_s)"
        log.warning("stream from %s cut: %s", plan.decision.provider, message)
        return await _end_with_error(response, encode, exchange, "timeout_error", message)
    if exchange.before_end is not None:
        exchange.status = 200
        await exchange.before_end()  # -- issue 17, ``store.durable``: the row before the last bytes
    if closing:
        await response.write(closing)
    await response.write_eof()
    return response


async def _hold_stop(
    response: web.StreamResponse,
    encode: Callable[[StreamEvent], bytes],
    exchange: Exchange,
    batch: list[StreamEvent],
) -> list[StreamEvent]:
    """``store.durable``: what comes before the stream's ``message_stop`` goes out, then the row is
    committed (its usage is known by then), then the rest: a client never sees the end of a stream
    whose row could still be lost."""
    at = next((i for i, event in enumerate(batch) if isinstance(event, MessageStop)), None)
    if at is None or exchange.before_end is None:
        return batch
    if at:
        await response.write(b"".join([encode(event) for event in batch[:at]]))
        if exchange.first_byte_s is None:
            exchange.first_byte_s = exchange.elapsed()
    exchange.status = 200
    await exchange.before_end()
    return batch[at:]


async def _end_with_error(
    response: web.StreamResponse,
    encode: Callable[[StreamEvent], bytes],
    exchange: Exchange,
    error_type: str,
    message: str,
) -> web.StreamResponse:
    """End a stream that has begun with the SSE ``error`` event, never a silent cut."""
    exchange.error_type = error_type
    exchange.error_message = message
    if exchange.before_end is not None:
        exchange.status = 200
        await exchange.before_end()
    await response.write(encode(StreamError(error_type=MID_STREAM_ERROR_TYPE, message=message)))
    await response.write_eof()
    return response
