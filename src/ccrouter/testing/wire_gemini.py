"""A Reply rendered as Gemini ``generateContent`` answers (https://ai.google.dev/api/generate-content).

Parts: thought summaries as ``{"text": ..., "thought": true}``, text parts, then ``functionCall`` parts
(``args`` is an object; Gemini sends each call whole, never as argument fragments). With thinking, the
first function call (else the first text part) carries a ``thoughtSignature``. ``usageMetadata`` counts
the prompt *including* cached tokens and the candidates *excluding* thoughts (``thoughtsTokenCount``).

``streamGenerateContent?alt=sse`` sends each chunk as ``data: {...}`` separated by CRLF blank lines, as
Google's servers do; without ``alt=sse`` the chunks form one JSON array streamed progressively. Every
chunk carries ``usageMetadata``; only the last one has the candidate counts and the ``finishReason``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from ccrouter.testing.script import RenderContext, Reply, dumps_verbatim, fragments, raw_placeholder

__all__ = [
    "JSON_CONTENT_TYPE",
    "SSE_CONTENT_TYPE",
    "error_body",
    "models_body",
    "render",
    "render_stream",
    "response_headers",
    "stream_content_type",
    "stream_error_frame",
]

JSON_CONTENT_TYPE = "application/json; charset=UTF-8"
SSE_CONTENT_TYPE = "text/event-stream"

# https://ai.google.dev/gemini-api/docs/troubleshooting: HTTP status -> google.rpc status
_STATUSES = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "API key not valid. Please pass a valid API key."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: ("INTERNAL", "An internal error has occurred."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}
_MODELS = (("gemini-2.5-pro", "Gemini 2.5 Pro"), ("gemini-2.5-flash", "Gemini 2.5 Flash"))


def stream_content_type(ctx: RenderContext) -> str:
    return SSE_CONTENT_TYPE if ctx.sse else JSON_CONTENT_TYPE


def _finish_reason(reply: Reply) -> str:
    # Gemini ends function calls and stop sequences with STOP as well.
    return "MAX_TOKENS" if reply.stop == "length" else "STOP"


def _usage(ctx: RenderContext, final: bool) -> dict[str, Any]:
    prompt = ctx.input_tokens + ctx.cache_read_tokens
    usage: dict[str, Any] = {"promptTokenCount": prompt}
    total = prompt
    if final:
        usage["candidatesTokenCount"] = ctx.output_tokens - ctx.thinking_tokens
        total += ctx.output_tokens
    usage["totalTokenCount"] = total
    if ctx.cache_read_tokens:
        usage["cachedContentTokenCount"] = ctx.cache_read_tokens
    if final and ctx.thinking_tokens:
        usage["thoughtsTokenCount"] = ctx.thinking_tokens
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    return usage


def _call_parts(reply: Reply, raws: list[str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for call in reply.tool_calls:
        args: Any = call.arguments
        if isinstance(call.arguments, str):
            args = raw_placeholder(len(raws))
            raws.append(call.arguments)
        function: dict[str, Any] = {"name": call.name, "args": args}
        if call.id is not None:
            function["id"] = call.id
        parts.append({"functionCall": function})
    return parts


def _sign(reply: Reply, parts: list[dict[str, Any]]) -> None:
    """Attach the thought signature where Gemini puts it: the first call, else the first answer part."""
    if reply.thinking is None:
        return
    answer = [part for part in parts if not part.get("thought")]
    calls = [part for part in answer if "functionCall" in part]
    target = calls[0] if calls else (answer[0] if answer else None)
    if target is not None:
        target["thoughtSignature"] = reply.signature()


def _chunk(ctx: RenderContext, parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
    # Gemini leaves ``parts`` out of a candidate that has none (MAX_TOKENS spent on thinking, as for
    # a maxOutputTokens of 1): the content is only {"role": "model"}.
    content: dict[str, Any] = {"parts": parts, "role": "model"} if parts else {"role": "model"}
    candidate: dict[str, Any] = {"content": content}
    if finish is not None:
        candidate["finishReason"] = finish
    candidate["index"] = 0
    return {
        "candidates": [candidate],
        "usageMetadata": _usage(ctx, final=finish is not None),
        "modelVersion": ctx.model,
        "responseId": f"fake{ctx.seq:016d}",
    }


def render(reply: Reply, ctx: RenderContext) -> bytes:
    """The ``generateContent`` response body."""
    parts: list[dict[str, Any]] = []
    if reply.thinking is not None:
        parts.append({"text": reply.thinking, "thought": True})
    if reply.text:
        parts.append({"text": reply.text})
    raws: list[str] = []
    parts.extend(_call_parts(reply, raws))
    _sign(reply, parts)
    return dumps_verbatim(_chunk(ctx, parts, _finish_reason(reply)), raws)


def _stream_parts(reply: Reply) -> list[list[dict[str, Any]]]:
    """The parts of each streamed chunk (the function calls all in one chunk, as Gemini sends them)."""
    size = reply.chunk_size
    chunks: list[list[dict[str, Any]]] = [
        [{"text": part, "thought": True}] for part in fragments(reply.thinking or "", size)
    ]
    chunks.extend([{"text": part}] for part in fragments(reply.text, size))
    return chunks


def render_stream(reply: Reply, ctx: RenderContext) -> Iterator[bytes]:
    """The chunks of ``streamGenerateContent``: SSE frames, or the pieces of a JSON array."""
    raws: list[str] = []
    chunks = _stream_parts(reply)
    calls = _call_parts(reply, raws)
    if calls:
        chunks.append(calls)
    if not chunks:
        chunks.append([])  # nothing at all: one chunk, without parts, with the finishReason
    elif "thought" in chunks[-1][0]:
        chunks.append([{"text": ""}])  # the finishReason rides on an answer chunk
    _sign(reply, [part for parts in chunks for part in parts])
    last = len(chunks) - 1
    for index, parts in enumerate(chunks):
        finish = _finish_reason(reply) if index == last else None
        data = dumps_verbatim(_chunk(ctx, parts, finish), raws if parts is calls else [])
        if ctx.sse:
            yield b"data: " + data + b"\r\n\r\n"
        else:
            yield (b"[" if index == 0 else b",\r\n") + data + (b"]" if index == last else b"")


def _error(status: int, retry_after: float | None) -> dict[str, Any]:
    name, message = _STATUSES.get(
        status, ("INTERNAL" if status >= 500 else "FAILED_PRECONDITION", f"HTTP {status}")
    )
    error: dict[str, Any] = {"code": status, "message": message, "status": name}
    if retry_after is not None:
        retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after:g}s"}
        error["details"] = [retry]
    return error


def error_body(status: int, retry_after: float | None = None, message: str | None = None) -> bytes:
    """The ``{"error": {code, message, status}}`` envelope (with a RetryInfo detail for a retry delay)."""
    error = _error(status, retry_after)
    if message is not None:
        error["message"] = message
    return orjson.dumps({"error": error})


def stream_error_frame(status: int, ctx: RenderContext) -> bytes:
    """An error object sent inside a started stream (an SSE frame, or the array's closing element)."""
    data = orjson.dumps({"error": _error(status, None)})
    return b"data: " + data + b"\r\n\r\n" if ctx.sse else b",\r\n" + data + b"]"


def response_headers(seq: int, rate_limits: bool, status: int = 200) -> dict[str, str]:
    """Gemini sends no rate-limit headers (quota state only shows in 429 bodies)."""
    return {}


def models_body() -> bytes:
    """``GET /v1beta/models``."""
    models = [
        {
            "name": f"models/{model_id}",
            "version": "001",
            "displayName": name,
            "inputTokenLimit": 1_048_576,
            "outputTokenLimit": 65_536,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
            "thinking": True,
        }
        for model_id, name in _MODELS
    ]
    return orjson.dumps({"models": models})
