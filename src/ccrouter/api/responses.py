"""The OpenAI Responses handler (``POST /v1/responses``): Codex CLI and ``client.responses`` get the
same routing, limits, keys, ledger and metrics as chat completions (registered by
``ccrouter.builtins.endpoints``). The gateway keeps no state: each request carries its whole history
(``ccrouter.codecs.responses.front``)."""

from __future__ import annotations

from aiohttp import web

from ccrouter.api.common import decision_headers, read_body, stream_events
from ccrouter.api.observe import exchange_for
from ccrouter.api.state import services_of
from ccrouter.codecs.responses import front
from ccrouter.codecs.responses.front_stream import ResponsesStreamEncoder
from ccrouter.services import Services

__all__ = ["responses"]


async def responses(request: web.Request) -> web.StreamResponse:
    state: Services = services_of(request)
    exchange = exchange_for(request)
    async with state.large.turn(request.content_length):
        raw_body = await read_body(request)
        state.heap.after_body(len(raw_body))
        canonical = front.decode_body(raw_body)
        plan = await state.dispatcher.plan(canonical, request.headers, exchange)
    headers = decision_headers(plan, state.simulated)
    if canonical.stream:
        encoder = ResponsesStreamEncoder(canonical)
        return await stream_events(request, plan, state.dispatcher.stream(plan), encoder.encode, headers)
    result = await state.dispatcher.complete(plan)
    return web.Response(
        body=front.encode_response(result, canonical),
        content_type="application/json",
        headers={**headers, **exchange.response_headers},
    )
