"""A Reply rendered as the OpenAI Responses API answers (https://platform.openai.com/docs/api-reference/responses).

Not streamed: a ``Response`` object (``object: "response"``) whose ``output`` holds a ``reasoning``
item for thinking (its summary), a ``message`` item with one ``output_text`` part, and one
``function_call`` item per tool call; ``status: incomplete`` with ``incomplete_details.reason:
max_output_tokens`` when the reply stops at the length limit (the API has no stop sequences, so a
stop-sequence reply ends as a plain completed one). Streamed: the semantic events, each as
``event: <type>`` and ``data: {..., "type", "sequence_number"}``: ``response.created``,
``response.in_progress``, per item ``response.output_item.added``, its part events and deltas
(``reasoning_summary_part.*`` / ``reasoning_summary_text.*``, ``content_part.*`` /
``output_text.*``, ``function_call_arguments.*``) and ``response.output_item.done``, then
``response.completed`` or ``response.incomplete`` with the whole response; no ``[DONE]``.
Usage: ``input_tokens`` include the cached part, ``output_tokens`` the reasoning tokens.
Errors, rate-limit headers and the models list are OpenAI's (``wire_openai``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from ccrouter.testing.script import RenderContext, Reply, fragments
from ccrouter.testing.wire_openai import error_body, models_body, response_headers

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
# The ``error`` event's code for an HTTP status (openai.types.responses.ResponseErrorEvent).
_ERROR_CODES = {
    429: ("rate_limit_exceeded", "Rate limit reached for requests"),
    400: ("invalid_prompt", "Invalid prompt"),
}
_SERVER_ERROR = ("server_error", "The server had an error while processing your request")


def _ids(ctx: RenderContext) -> dict[str, str]:
    return {
        "response": f"resp_fake{ctx.seq:016d}",
        "message": f"msg_fake{ctx.seq:016d}",
        "reasoning": f"rs_fake{ctx.seq:016d}",
    }


def _call_id(ctx: RenderContext, index: int, explicit: str | None) -> str:
    return explicit if explicit is not None else f"call_fake{ctx.seq:010d}{index:04d}"


def _usage(ctx: RenderContext) -> dict[str, Any]:
    prompt = ctx.input_tokens + ctx.cache_read_tokens
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": ctx.cache_read_tokens, "cache_write_tokens": 0},
        "output_tokens": ctx.output_tokens,
        "output_tokens_details": {"reasoning_tokens": ctx.thinking_tokens},
        "total_tokens": prompt + ctx.output_tokens,
    }


def _items(reply: Reply, ctx: RenderContext, status: str) -> list[dict[str, Any]]:
    """The output items, finished."""
    ids = _ids(ctx)
    items: list[dict[str, Any]] = []
    if reply.thinking is not None:
        summary = [{"type": "summary_text", "text": reply.thinking}] if reply.thinking else []
        items.append({"id": ids["reasoning"], "type": "reasoning", "summary": summary})
    if reply.text or not reply.tool_calls:
        items.append(
            {
                "id": ids["message"],
                "type": "message",
                "status": status,
                "role": "assistant",
                "content": [{"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}],
            }
        )
    for index, call in enumerate(reply.tool_calls):
        call_id = _call_id(ctx, index, call.id)
        items.append(
            {
                "id": f"fc_{call_id}",
                "type": "function_call",
                "status": status,
                "call_id": call_id,
                "name": call.name,
                "arguments": call.arguments_json(),
            }
        )
    return items


def _response(reply: Reply, ctx: RenderContext, *, done: bool) -> dict[str, Any]:
    incomplete = reply.stop == "length"
    status = ("incomplete" if incomplete else "completed") if done else "in_progress"
    return {
        "id": _ids(ctx)["response"],
        "object": "response",
        "created_at": ctx.created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if done and incomplete else None,
        "instructions": None,
        "max_output_tokens": None,
        "model": ctx.model,
        "output": _items(reply, ctx, "incomplete" if incomplete else "completed") if done else [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": False,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": _usage(ctx) if done else None,
        "user": None,
        "metadata": {},
    }


def stream_content_type(ctx: RenderContext) -> str:
    return STREAM_CONTENT_TYPE


def render(reply: Reply, ctx: RenderContext) -> bytes:
    """The non-streamed ``Response`` body."""
    return orjson.dumps(_response(reply, ctx, done=True))


def _item_events(index: int, item: dict[str, Any], size: int) -> Iterator[dict[str, Any]]:
    """The events of one output item, from ``output_item.added`` to ``output_item.done``."""
    kind, item_id = item["type"], item["id"]
    where = {"item_id": item_id, "output_index": index}
    if kind == "reasoning":
        yield {"type": "response.output_item.added", "output_index": index, "item": {**item, "summary": []}}
        for number, part in enumerate(item["summary"]):
            at = {**where, "summary_index": number}
            yield {
                "type": "response.reasoning_summary_part.added",
                **at,
                "part": {"type": "summary_text", "text": ""},
            }
            for piece in fragments(part["text"], size):
                yield {"type": "response.reasoning_summary_text.delta", **at, "delta": piece}
            yield {"type": "response.reasoning_summary_text.done", **at, "text": part["text"]}
            yield {"type": "response.reasoning_summary_part.done", **at, "part": part}
    elif kind == "message":
        yield {
            "type": "response.output_item.added",
            "output_index": index,
            "item": {**item, "status": "in_progress", "content": []},
        }
        for number, part in enumerate(item["content"]):
            at = {**where, "content_index": number}
            empty = {**part, "text": ""}
            yield {"type": "response.content_part.added", **at, "part": empty}
            for piece in fragments(part["text"], size):
                yield {"type": "response.output_text.delta", **at, "delta": piece, "logprobs": []}
            yield {"type": "response.output_text.done", **at, "text": part["text"], "logprobs": []}
            yield {"type": "response.content_part.done", **at, "part": part}
    else:
        opened = {**item, "status": "in_progress", "arguments": ""}
        yield {"type": "response.output_item.added", "output_index": index, "item": opened}
        for piece in fragments(item["arguments"], size):
            yield {"type": "response.function_call_arguments.delta", **where, "delta": piece}
        yield {"type": "response.function_call_arguments.done", **where, "arguments": item["arguments"]}
    yield {"type": "response.output_item.done", "output_index": index, "item": item}


def render_stream(reply: Reply, ctx: RenderContext) -> Iterator[bytes]:
    """The SSE frames of a streamed response."""
    started = _response(reply, ctx, done=False)
    final = _response(reply, ctx, done=True)
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
    ]
    for index, item in enumerate(final["output"]):
        events.extend(_item_events(index, item, reply.chunk_size))
    terminal = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
    events.append({"type": terminal, "response": final})
    for number, event in enumerate(events):
        yield _frame({**event, "sequence_number": number})


def _frame(event: dict[str, Any]) -> bytes:
    kind: str = event["type"]
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def stream_error_frame(status: int, ctx: RenderContext) -> bytes:
    """The ``error`` event the API sends inside a started stream."""
    code, message = _ERROR_CODES.get(status, _SERVER_ERROR)
    return _frame({"type": "error", "code": code, "message": message, "param": None, "sequence_number": 0})
