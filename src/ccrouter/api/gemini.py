"""The Gemini API handlers, for Gemini CLI and the google-genai SDKs (registered by
``ccrouter.builtins.endpoints``): ``POST /v1beta/models/{model}:generateContent``,
``:streamGenerateContent`` (``?alt=sse``: SSE ``data:`` lines; without it one JSON array, streamed),
``:countTokens``, and ``GET /v1beta/models[/{model}]`` (the configured routes).

The model in the path is the client's model name, which routing resolves as it does the ``model`` of
any other front. The key comes as ``x-goog-api-key`` or ``?key=`` (``ccrouter.api.auth``); errors
answer in Google's envelope (``ccrouter.api.errors``).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from ccrouter.api.common import decision_headers, read_body, stream_events
from ccrouter.api.errors import error_response
from ccrouter.api.observe import exchange_for
from ccrouter.api.state import services_of
from ccrouter.codecs.gemini.front import count_tokens_body, decode_request, encode_response, include_thoughts
from ccrouter.codecs.gemini.front_stream import GeminiFrontStreamEncoder
from ccrouter.errors import RequestError
from ccrouter.messages import MessagesRequest
from ccrouter.routing.aliases import ModelRoute
from ccrouter.services import Services

__all__ = [
    "count_tokens",
    "generate_content",
    "get_model",
    "list_models",
    "model_response",
    "stream_generate_content",
]

_MAX_ID = 512


async def generate_content(request: web.Request) -> web.StreamResponse:
    return await _generate(request, stream=False)


async def stream_generate_content(request: web.Request) -> web.StreamResponse:
    return await _generate(request, stream=True)


async def _generate(request: web.Request, *, stream: bool) -> web.StreamResponse:
    state: Services = services_of(request)
    exchange = exchange_for(request)
    async with state.large.turn(request.content_length):
        canonical = await _decode(request, state, stream=stream)
        plan = await state.dispatcher.plan(canonical, request.headers, exchange)
    headers = decision_headers(plan, state.simulated)
    thoughts = include_thoughts(canonical)
    if stream:
        encoder = GeminiFrontStreamEncoder(
            canonical.model, thoughts=thoughts, sse=request.query.get("alt") == "sse"
        )
        return await stream_events(
            request,
            plan,
            state.dispatcher.stream(plan),
            encoder.encode,
            {**headers, "content-type": encoder.content_type},
        )
    result = await state.dispatcher.complete(plan)
    return web.Response(
        body=encode_response(result, canonical.model, thoughts=thoughts),
        content_type="application/json",
        headers={**headers, **exchange.response_headers},
    )


async def count_tokens(request: web.Request) -> web.Response:
    state: Services = services_of(request)
    async with state.large.turn(request.content_length):
        canonical = await _decode(request, state, stream=False, counting=True)
        tokens = await state.counter.count_request_async(canonical)
    return web.Response(body=count_tokens_body(tokens), content_type="application/json")


async def _decode(
    request: web.Request, state: Services, *, stream: bool, counting: bool = False
) -> MessagesRequest:
    body = await read_body(request)
    state.heap.after_body(len(body))
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"the request body is not valid JSON ({exc})") from None
    if counting and isinstance(data, dict) and isinstance(data.get("generateContentRequest"), dict):
        # CountTokensRequest: ``contents`` alone, or a whole GenerateContentRequest.
        data = data["generateContentRequest"]
    return decode_request(data, request.match_info["model"], stream=stream)


# --------------------------------------------------------------------------- models


def _entry(route: ModelRoute, shown: str | None = None) -> dict[str, object]:
    return {
        "name": f"models/{shown or route.route}",
        "baseModelId": route.model,
        "displayName": f"{route.model} ({route.provider})",
        "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
    }


async def list_models(request: web.Request) -> web.Response:
    """``ListModelsResponse``: every configured route, named ``provider,model`` as the OpenAI listing
    does (all of them on one page: a gateway's routes are few)."""
    routes = services_of(request).router.aliases.routes
    return web.Response(
        body=orjson.dumps({"models": [_entry(route) for route in routes]}), content_type="application/json"
    )


async def get_model(request: web.Request) -> web.Response:
    return model_response(request, request.match_info["model"])


def model_response(request: web.Request, wanted: str) -> web.Response:
    """A ``Model`` for the configured route (or alias) ``wanted``, else a 404."""
    wanted = wanted.removeprefix("models/")
    aliases = services_of(request).router.aliases
    found = aliases.resolve(wanted) or next((r for r in aliases.routes if r.route == wanted), None)
    if found is None:
        shown = wanted[:_MAX_ID]
        return error_response("google", 404, "not_found_error", f"model {shown!r} is not configured here")
    return web.Response(body=orjson.dumps(_entry(found, wanted)), content_type="application/json")
