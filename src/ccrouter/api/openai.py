"""The OpenAI chat-completions handler: the same routing for OpenAI SDK clients (registered by
``ccrouter.builtins.endpoints``)."""

from __future__ import annotations

import logging

from aiohttp import web

from ccrouter.api.common import decision_headers, read_body, stream_events
from ccrouter.api.observe import exchange_for
from ccrouter.api.state import services_of
from ccrouter.codecs.openai import chat as openai_chat
from ccrouter.codecs.openai import stream as openai_stream
from ccrouter.codecs.openai.body import decode_openai_body
from ccrouter.codecs.openai.front import include_usage
from ccrouter.services import Services

__all__ = ["chat_completions"]

log = logging.getLogger("ccrouter.api")


async def chat_completions(request: web.Request) -> web.StreamResponse:
    state: Services = services_of(request)
    exchange = exchange_for(request)
    async with state.large.turn(request.content_length):
        raw_body = await read_body(request)
        state.heap.after_body(len(raw_body))
        canonical = decode_openai_body(raw_body, state.openai_decode_cache)
        plan = await state.dispatcher.plan(canonical, request.headers, exchange)
    headers = decision_headers(plan, state.simulated)
    if canonical.stream:
        encoder = openai_stream.OpenAIStreamEncoder(canonical.model, include_usage(canonical))
        return await stream_events(
            request, plan, state.dispatcher.stream(plan), encoder.encode, headers, closing=encoder.done()
        )
    result = await state.dispatcher.complete(plan)
    return web.Response(
        body=openai_chat.encode_response(result, canonical.model),
        content_type="application/json",
        headers={**headers, **exchange.response_headers},
    )
