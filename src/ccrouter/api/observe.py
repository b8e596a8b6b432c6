"""Opens an ``Exchange`` for each API request, tags it with a request id, and tells the observers
when the response is finished (status, duration), whatever the outcome."""

from __future__ import annotations

import logging
import re
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler

from ccrouter.api.state import STATE
from ccrouter.exchange import Exchange

__all__ = ["EXCHANGE", "exchange_for", "observe_middleware"]

log = logging.getLogger("ccrouter.api")

EXCHANGE: web.RequestKey[Exchange] = web.RequestKey("ccrouter_exchange", Exchange)

_ENDPOINTS = {
    "/v1/messages": "messages",
    "/v1/messages/count_tokens": "count_tokens",
    "/v1/chat/completions": "chat_completions",
    "/v1/models": "models",
}
# A client's request id is echoed only if it is a sane token (it ends up in logs and headers).
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def exchange_for(request: web.Request) -> Exchange:
    return request[EXCHANGE]


@web.middleware
async def observe_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    given = request.headers.get("x-request-id", "")
    request_id = given if _REQUEST_ID.match(given) else f"req_{uuid.uuid4().hex}"
    exchange = Exchange(request_id=request_id, endpoint=_ENDPOINTS.get(request.path, request.path))
    request[EXCHANGE] = exchange
    response: web.StreamResponse = await handler(request)
    if not response.prepared:
        response.headers["x-request-id"] = request_id
    exchange.status = response.status
    exchange.duration_s = exchange.elapsed()
    if request.path.startswith("/v1/"):
        for observer in request.app[STATE].observers:
            observer.on_exchange(exchange)
    return response
