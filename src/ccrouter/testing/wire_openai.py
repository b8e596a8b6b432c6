"""A Reply rendered as OpenAI chat completions answer (https://platform.openai.com/docs/api-reference/chat).

Streaming: a first chunk carrying the role, ``reasoning_content`` deltas for thinking (the DeepSeek /
OpenRouter extension most OpenAI-compatible servers use), ``content`` deltas, ``tool_calls`` deltas (the
first one of a call holds index, id, type and name with empty arguments, the next ones only argument
fragments), a chunk with ``finish_reason``, then, only when ``stream_options.include_usage`` was asked,
a chunk with ``choices: []`` and the usage (every earlier chunk then has ``usage: null``), and
``data: [DONE]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from ccrouter.testing.script import RenderContext, Reply, fragments

__all__ = [
    "JSON_CONTENT_TYPE",
    "OUTPUT_LIMIT_MESSAGE",
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
_FINGERPRINT = "fp_fake0001"
_DONE = b"data: [DONE]\n\n"
# What OpenAI answers (HTTP 400, invalid_request_error) when a reasoning model spends all of a tiny
# max_completion_tokens (1 or 2) before any output: ``Fault("status", status=400,
# body=error_body(400, message=OUTPUT_LIMIT_MESSAGE))`` makes the fake behave so.
OUTPUT_LIMIT_MESSAGE = (
    "Could not finish the message because max_tokens or model output limit was reached. "
    "Please try again with higher max_tokens."
)

# https://platform.openai.com/docs/guides/error-codes: status -> (type, code, message)
_ERRORS = {
    400: ("invalid_request_error", None, "Invalid request"),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided"),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Request not allowed"),
    404: ("invalid_request_error", "model_not_found", "The model does not exist"),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests"),
    500: ("server_error", None, "The server had an error while processing your request"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later"),
}
_REQUESTS_LIMIT = 10_000
_TOKENS_LIMIT = 30_000_000
_MODELS = (("gpt-4o", 1715367049), ("gpt-4o-mini", 1721172741), ("o3-mini", 1737146383))


def _completion_id(ctx: RenderContext) -> str:
    return f"chatcmpl-fake{ctx.seq:016d}"


def _call_id(ctx: RenderContext, index: int, explicit: str | None) -> str:
    return explicit if explicit is not None else f"call_fake{ctx.seq:010d}{index:04d}"


def _finish_reason(reply: Reply) -> str:
    if reply.stop == "length":
        return "length"
    # OpenAI reports a matched stop sequence as a plain "stop".
    return "tool_calls" if reply.tool_calls and reply.stop == "end" else "stop"


def _usage(ctx: RenderContext) -> dict[str, Any]:
    prompt = ctx.input_tokens + ctx.cache_read_tokens  # prompt_tokens includes the cached part
    return {
        "prompt_tokens": prompt,
        "completion_tokens": ctx.output_tokens,
        "total_tokens": prompt + ctx.output_tokens,
        "prompt_tokens_details": {"cached_tokens": ctx.cache_read_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": ctx.thinking_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def stream_content_type(ctx: RenderContext) -> str:
    return STREAM_CONTENT_TYPE


def render(reply: Reply, ctx: RenderContext) -> bytes:
    """The non-streaming response body; ``str`` tool arguments are the arguments string verbatim."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.text if reply.text or not reply.tool_calls else None,
        "refusal": None,
    }
    if reply.thinking is not None:
        message["reasoning_content"] = reply.thinking
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": _call_id(ctx, index, call.id),
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json()},
            }
            for index, call in enumerate(reply.tool_calls)
        ]
    return orjson.dumps(
        {
            "id": _completion_id(ctx),
            "object": "chat.completion",
            "created": ctx.created,
            "model": ctx.model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": _finish_reason(reply)}
            ],
            "usage": _usage(ctx),
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINT,
        }
    )


def _deltas(reply: Reply, ctx: RenderContext) -> Iterator[dict[str, Any]]:
    size = reply.chunk_size
    yield {"role": "assistant", "content": "", "refusal": None}
    for part in fragments(reply.thinking or "", size):
        yield {"reasoning_content": part}
    for part in fragments(reply.text, size):
        yield {"content": part}
    for index, call in enumerate(reply.tool_calls):
        head = {"name": call.name, "arguments": ""}
        yield {
            "tool_calls": [
                {"index": index, "id": _call_id(ctx, index, call.id), "type": "function", "function": head}
            ]
        }
        for part in fragments(call.arguments_json(), size):
            yield {"tool_calls": [{"index": index, "function": {"arguments": part}}]}


def render_stream(reply: Reply, ctx: RenderContext) -> Iterator[bytes]:
    """The SSE frames of a streamed response, ``[DONE]`` included."""
    base: dict[str, Any] = {
        "id": _completion_id(ctx),
        "object": "chat.completion.chunk",
        "created": ctx.created,
        "model": ctx.model,
        "service_tier": "default",
        "system_fingerprint": _FINGERPRINT,
    }
    if ctx.include_usage:
        base["usage"] = None
    for delta in _deltas(reply, ctx):
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
        yield _frame({**base, "choices": [choice]})
    finish = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": _finish_reason(reply)}
    yield _frame({**base, "choices": [finish]})
    if ctx.include_usage:
        yield _frame({**base, "choices": [], "usage": _usage(ctx)})
    yield _DONE


def _frame(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


def _error(status: int) -> dict[str, Any]:
    kind, code, message = _ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, f"HTTP {status}")
    )
    return {"message": message, "type": kind, "param": None, "code": code}


def error_body(status: int, retry_after: float | None = None, message: str | None = None) -> bytes:
    """The ``{"error": {message, type, param, code}}`` envelope."""
    error = _error(status)
    if message is not None:
        error["message"] = message
    return orjson.dumps({"error": error})


def stream_error_frame(status: int, ctx: RenderContext) -> bytes:
    """An error object sent as a ``data:`` frame inside a started stream (what the API does)."""
    return _frame({"error": _error(status)})


def response_headers(seq: int, rate_limits: bool, status: int = 200) -> dict[str, str]:
    """``x-request-id`` and the ``x-ratelimit-*`` family (reset values are durations like ``6ms``)."""
    headers = {"x-request-id": f"req_fake{seq:016d}", "openai-processing-ms": "1"}
    if not rate_limits:
        return headers
    exhausted = status == 429
    headers.update(
        {
            "x-ratelimit-limit-requests": str(_REQUESTS_LIMIT),
            "x-ratelimit-limit-tokens": str(_TOKENS_LIMIT),
            "x-ratelimit-remaining-requests": "0" if exhausted else str(max(0, _REQUESTS_LIMIT - seq)),
            "x-ratelimit-remaining-tokens": "0" if exhausted else str(_TOKENS_LIMIT - 1000),
            "x-ratelimit-reset-requests": "20s" if exhausted else "6ms",
            "x-ratelimit-reset-tokens": "20s" if exhausted else "2ms",
        }
    )
    return headers


def models_body() -> bytes:
    """``GET /v1/models``."""
    data = [
        {"id": model_id, "object": "model", "created": created, "owned_by": "system"}
        for model_id, created in _MODELS
    ]
    return orjson.dumps({"object": "list", "data": data})
