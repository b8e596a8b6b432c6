"""The OpenAI chat-completions surface: the same routing for OpenAI SDK clients."""

from __future__ import annotations

import logging

from aiohttp import web

from ccrouter.api.common import decision_headers, read_body, stream_events
from ccrouter.api.observe import exchange_for
from ccrouter.api.state import services_of
from ccrouter.codecs import openai_chat, openai_stream
from ccrouter.codecs.openai_body import decode_openai_body
from ccrouter.services import Services

__all__ = ["routes"]

log = logging.getLogger("ccrouter.api")


async def chat_completions(request: web.Request) -> web.StreamResponse:
    state: Services = services_of(request)
    exchange = exchange_for(request)
    async with state.large.turn(request.content_length):
        raw_body = await read_body(request)
        state.heap.after_body(len(raw_body))
        canonical = decode_openai_body(raw_body, state.openai_decode_cache)
        plan = await state.dispatcher.plan(canonical, request.headers, exchange)
    body = canonical.raw or {}
    headers = decision_headers(plan, state.simulated)
    if canonical.stream:
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        encoder = openai_stream.OpenAIStreamEncoder(canonical.model, include_usage)
        return await stream_events(
            request, plan, state.dispatcher.stream(plan), encoder.encode, headers, closing=encoder.done()
        )
    result = await state.dispatcher.complete(plan)
    return web.Response(
        body=openai_chat.encode_response(result, canonical.model),
        content_type="application/json",
        headers={**headers, **exchange.response_headers},
    )


def routes() -> list[web.RouteDef]:
    return [web.post("/v1/chat/completions", chat_completions)]
