"""Errors rendered in the client's own envelope: the one the endpoint table names for the path
(``ccrouter.api.endpoints``), OpenAI's, Google's or Anthropic's."""

from __future__ import annotations

import logging

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from ccrouter.api.endpoints import ENDPOINTS, Envelope
from ccrouter.codecs.gemini.front import error_envelope, google_status
from ccrouter.errors import CCRouterError, anthropic_error_type

__all__ = ["error_body", "error_middleware", "error_response"]

log = logging.getLogger("ccrouter.api")

# OpenAI's envelope names error types differently; map the few that SDKs act on.
_OPENAI_TYPES = {
    "invalid_request_error": "invalid_request_error",
    "authentication_error": "authentication_error",
    "permission_error": "permission_error",
    "not_found_error": "not_found_error",
    "request_too_large": "invalid_request_error",
    "rate_limit_error": "rate_limit_exceeded",
    "overloaded_error": "server_error",
    "api_error": "server_error",
}


def error_body(envelope: Envelope, error_type: str, message: str, status: int = 400) -> bytes:
    """An error in ``envelope``, as JSON (Google's names the HTTP ``status``)."""
    body: dict[str, object]
    if envelope == "google":
        body = error_envelope(status, message)
    elif envelope == "openai":
        body = {
            "error": {
                "message": message,
                "type": _OPENAI_TYPES.get(error_type, "server_error"),
                "param": None,
                "code": error_type,
            }
        }
    else:
        body = {"type": "error", "error": {"type": error_type, "message": message}}
    return orjson.dumps(body)


# An error message may quote the client's own value back (``got ...``): never more than this of it.
_MAX_MESSAGE_CHARS = 2048


def error_response(envelope: Envelope, status: int, error_type: str, message: str) -> web.Response:
    if len(message) > _MAX_MESSAGE_CHARS:
        message = message[: _MAX_MESSAGE_CHARS - 3] + "..."
    if envelope == "google":
        status = google_status(status)  # Anthropic's 529 is no Google status
    return web.Response(
        status=status,
        body=error_body(envelope, error_type, message, status),
        content_type="application/json",
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Any error a handler raises, as a response in the envelope of the request's endpoint."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except CCRouterError as exc:
        if exc.status >= 500:
            log.warning("request failed: %s", exc.message)
        response = error_response(_envelope(request), exc.status, exc.error_type, exc.message)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            response.headers["retry-after"] = str(max(1, round(retry_after)))
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
        if exc.status == 413:
            message = f"request body too large: {exc.text}"
        return error_response(_envelope(request), exc.status, anthropic_error_type(exc.status), message)
    except Exception:  # the boundary: a bug must still answer in the client's format, and be logged
        log.exception("unhandled error serving %s %s", request.method, request.path)
        return error_response(
            _envelope(request), 500, "api_error", "internal error in ccrouter (see its log)"
        )


def _envelope(request: web.Request) -> Envelope:
    table = request.app.get(ENDPOINTS)
    return table.envelope(request.path) if table is not None else "anthropic"
