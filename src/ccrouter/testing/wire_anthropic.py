"""A Reply rendered as the Anthropic Messages API answers (https://docs.anthropic.com/en/api/messages).

Streaming follows the documented event grammar: ``message_start``, then for each content block a
``content_block_start``, its ``content_block_delta`` events and a ``content_block_stop`` (blocks strictly
one after another), a ``ping`` after the first block starts, ``message_delta`` (stop reason and the final
usage) and ``message_stop``. Thinking blocks end with one ``signature_delta``; tool input arrives as
several ``input_json_delta`` fragments, the first one empty as the real API sends it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ccrouter.testing.script import RenderContext, Reply, dumps_verbatim, fragments, raw_placeholder

__all__ = [
    "JSON_CONTENT_TYPE",
    "STREAM_CONTENT_TYPE",
    "error_body",
    "models_body",
    "render",
    "render_stream",
    "response_headers",
    "stream_content_type",
    "stream_error_frame",
]

JSON_CONTENT_TYPE = "application/json"
STREAM_CONTENT_TYPE = "text/event-stream; charset=utf-8"

# https://docs.anthropic.com/en/api/errors: HTTP status -> error type
_ERROR_TYPES = {
    400: ("invalid_request_error", "Invalid request"),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource"),
    404: ("not_found_error", "The requested resource could not be found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes"),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit"),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}
_REQUESTS_LIMIT = 4000
_TOKENS_LIMIT = 2_000_000
_MODELS = (
    ("claude-opus-4-1-20250805", "Claude Opus 4.1", "2025-08-05T00:00:00Z"),
    ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z"),
    ("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "2025-10-01T00:00:00Z"),
)


def _message_id(ctx: RenderContext) -> str:
    return f"msg_fake{ctx.seq:016d}"


def _tool_id(ctx: RenderContext, index: int, explicit: str | None) -> str:
    return explicit if explicit is not None else f"toolu_fake{ctx.seq:010d}{index:04d}"


def _stop_reason(reply: Reply) -> str:
    if reply.stop == "length":
        return "max_tokens"
    if reply.stop == "stop_sequence":
        return "stop_sequence"
    return "tool_use" if reply.tool_calls else "end_turn"


def _usage(ctx: RenderContext, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": ctx.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": ctx.cache_read_tokens,
        "output_tokens": output_tokens,
    }


def stream_content_type(ctx: RenderContext) -> str:
    return STREAM_CONTENT_TYPE


def render(reply: Reply, ctx: RenderContext) -> bytes:
    """The non-streaming response body."""
    content: list[dict[str, Any]] = []
    if reply.thinking is not None:
        content.append({"type": "thinking", "thinking": reply.thinking, "signature": reply.signature()})
    if reply.text:
        content.append({"type": "text", "text": reply.text})
    raws: list[str] = []
    for index, call in enumerate(reply.tool_calls):
        tool_input: Any = call.arguments
        if isinstance(call.arguments, str):
            tool_input = raw_placeholder(len(raws))
            raws.append(call.arguments)
        content.append(
            {"type": "tool_use", "id": _tool_id(ctx, index, call.id), "name": call.name, "input": tool_input}
        )
    return dumps_verbatim(
        {
            "id": _message_id(ctx),
            "type": "message",
            "role": "assistant",
            "model": ctx.model,
            "content": content,
            "stop_reason": _stop_reason(reply),
            "stop_sequence": reply.stop_sequence if reply.stop == "stop_sequence" else None,
            "usage": {**_usage(ctx, ctx.output_tokens), "service_tier": "standard"},
        },
        raws,
    )


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _blocks(reply: Reply, ctx: RenderContext) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(content_block_start payload, its deltas) for each block, in order."""
    size = reply.chunk_size
    if reply.thinking is not None:
        deltas = [{"type": "thinking_delta", "thinking": part} for part in fragments(reply.thinking, size)]
        deltas.append({"type": "signature_delta", "signature": reply.signature()})
        yield {"type": "thinking", "thinking": "", "signature": ""}, deltas
    if reply.text:
        yield (
            {"type": "text", "text": ""},
            [{"type": "text_delta", "text": part} for part in fragments(reply.text, size)],
        )
    for index, call in enumerate(reply.tool_calls):
        start = {"type": "tool_use", "id": _tool_id(ctx, index, call.id), "name": call.name, "input": {}}
        parts = ["", *fragments(call.arguments_json(), size)]
        yield start, [{"type": "input_json_delta", "partial_json": part} for part in parts]


def render_stream(reply: Reply, ctx: RenderContext) -> Iterator[bytes]:
    """The SSE frames of a streamed response."""
    message: dict[str, Any] = {
        "id": _message_id(ctx),
        "type": "message",
        "role": "assistant",
        "model": ctx.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        # The real API reports a placeholder output count here; the final one is in message_delta.
        "usage": {**_usage(ctx, 1), "service_tier": "standard"},
    }
    yield _event("message_start", {"type": "message_start", "message": message})
    pinged = False
    for index, (start, deltas) in enumerate(_blocks(reply, ctx)):
        yield _event(
            "content_block_start", {"type": "content_block_start", "index": index, "content_block": start}
        )
        if not pinged:
            pinged = True
            yield _event("ping", {"type": "ping"})
        for delta in deltas:
            yield _event(
                "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
            )
        yield _event("content_block_stop", {"type": "content_block_stop", "index": index})
    if not pinged:
        yield _event("ping", {"type": "ping"})
    stop_sequence = reply.stop_sequence if reply.stop == "stop_sequence" else None
    yield _event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": _stop_reason(reply), "stop_sequence": stop_sequence},
            "usage": _usage(ctx, ctx.output_tokens),
        },
    )
    yield _event("message_stop", {"type": "message_stop"})


def _error(status: int) -> dict[str, Any]:
    kind, message = _ERROR_TYPES.get(status, ("api_error" if status >= 500 else "invalid_request_error", ""))
    return {"type": kind, "message": message or f"HTTP {status}"}


def error_body(status: int, retry_after: float | None = None, message: str | None = None) -> bytes:
    """The error envelope, e.g. 529 -> ``overloaded_error``."""
    error = _error(status)
    if message is not None:
        error["message"] = message
    return orjson.dumps({"type": "error", "error": error, "request_id": "req_fake_error"})


def stream_error_frame(status: int, ctx: RenderContext) -> bytes:
    """An ``error`` event sent inside an already started stream."""
    return _event("error", {"type": "error", "error": _error(status)})


def response_headers(seq: int, rate_limits: bool, status: int = 200) -> dict[str, str]:
    """``request-id`` and the ``anthropic-ratelimit-*`` family (reset times are RFC 3339)."""
    headers = {"request-id": f"req_fake{seq:016d}"}
    if not rate_limits:
        return headers
    reset = (datetime.now(UTC) + timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    remaining = 0 if status == 429 else max(0, _REQUESTS_LIMIT - seq)
    tokens_left = 0 if status == 429 else _TOKENS_LIMIT - 1000
    for name, limit, left in (
        ("requests", _REQUESTS_LIMIT, remaining),
        ("tokens", _TOKENS_LIMIT, tokens_left),
        ("input-tokens", _TOKENS_LIMIT // 5 * 4, tokens_left // 5 * 4),
        ("output-tokens", _TOKENS_LIMIT // 5, tokens_left // 5),
    ):
        headers[f"anthropic-ratelimit-{name}-limit"] = str(limit)
        headers[f"anthropic-ratelimit-{name}-remaining"] = str(left)
        headers[f"anthropic-ratelimit-{name}-reset"] = reset
    return headers


def models_body() -> bytes:
    """``GET /v1/models``."""
    data = [
        {"type": "model", "id": model_id, "display_name": name, "created_at": created}
        for model_id, name, created in _MODELS
    ]
    return orjson.dumps(
        {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
    )
