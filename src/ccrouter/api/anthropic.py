"""The Anthropic Messages API handlers: /v1/messages, /v1/messages/count_tokens (``/v1/models`` is
``ccrouter.api.models``; registered by ``ccrouter.builtins.endpoints``)."""

from __future__ import annotations

import logging

import orjson
from aiohttp import web

from ccrouter.api.common import decision_headers, read_body, stream_events
from ccrouter.api.observe import exchange_for
from ccrouter.api.state import services_of
from ccrouter.codecs.anthropic import codec
from ccrouter.codecs.anthropic.body import decode_request_body
from ccrouter.services import Services

__all__ = ["count_tokens", "messages"]

log = logging.getLogger("ccrouter.api")


async def messages(request: web.Request) -> web.StreamResponse:
    state: Services = services_of(request)
    exchange = exchange_for(request)
    async with state.large.turn(request.content_length):
        body = await read_body(request)
        state.heap.after_body(len(body))
        canonical = decode_request_body(body, state.decode_cache)
        canonical.betas = request.headers.get("anthropic-beta")
        plan = await state.dispatcher.plan(canonical, request.headers, exchange)
    headers = decision_headers(plan, state.simulated)
    if canonical.stream:
        response = await stream_events(
            request, plan, state.dispatcher.stream(plan), codec.encode_event, headers
        )
    else:
        result = await state.dispatcher.complete(plan)
        response = web.Response(
            body=codec.encode_response(result),
            content_type="application/json",
            headers={**headers, **exchange.response_headers},
        )
    return response


async def count_tokens(request: web.Request) -> web.Response:
    state: Services = services_of(request)
    async with state.large.turn(request.content_length):
        body = await read_body(request)
        state.heap.after_body(len(body))
        canonical = decode_request_body(body, state.decode_cache, require_max_tokens=False)
        tokens = await state.counter.count_request_async(canonical)
    return web.Response(body=orjson.dumps({"input_tokens": tokens}), content_type="application/json")
