"""A Reply rendered as Amazon Bedrock's Converse answers
(https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html).

The streamed form is a list of ``(event type, payload)`` pairs, each sent by the fake Bedrock as one
event stream message: ``messageStart``, reasoning then text blocks (no ``contentBlockStart``: they
begin with their first delta), tool use blocks (``contentBlockStart`` with the id and name, then the
input as string fragments), ``messageStop`` and ``metadata`` (usage, metrics). Every payload carries
the ``p`` padding field the real service adds (a hidden field clients must ignore).
"""

from __future__ import annotations

from typing import Any

from ccrouter.testing.script import RenderContext, Reply, fragments

__all__ = ["render", "render_events"]

JSON = dict[str, Any]


def _stop_reason(reply: Reply) -> str:
    if reply.stop == "length":
        return "max_tokens"
    if reply.stop == "stop_sequence":
        return "stop_sequence"
    return "tool_use" if reply.tool_calls else "end_turn"


def _usage(ctx: RenderContext) -> JSON:
    return {
        "inputTokens": ctx.input_tokens,
        "outputTokens": ctx.output_tokens,
        "totalTokens": ctx.input_tokens + ctx.output_tokens + ctx.cache_read_tokens,
        "cacheReadInputTokens": ctx.cache_read_tokens,
        "cacheWriteInputTokens": 0,
    }


def _tool_id(ctx: RenderContext, index: int, explicit: str | None) -> str:
    return explicit if explicit is not None else f"tooluse_fake{ctx.seq:08d}{index:04d}"


def render(reply: Reply, ctx: RenderContext) -> JSON:
    """The non-streamed Converse response."""
    content: list[JSON] = []
    if reply.thinking is not None:
        content.append(
            {"reasoningContent": {"reasoningText": {"text": reply.thinking, "signature": reply.signature()}}}
        )
    if reply.text:
        content.append({"text": reply.text})
    for index, call in enumerate(reply.tool_calls):
        arguments = call.arguments if isinstance(call.arguments, dict) else {"raw": call.arguments}
        content.append(
            {"toolUse": {"toolUseId": _tool_id(ctx, index, call.id), "name": call.name, "input": arguments}}
        )
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": _stop_reason(reply),
        "usage": _usage(ctx),
        "metrics": {"latencyMs": 42},
    }


def render_events(reply: Reply, ctx: RenderContext) -> list[tuple[str, JSON]]:
    """The ConverseStream events, in order."""
    pad = "abcdefghij"
    out: list[tuple[str, JSON]] = [("messageStart", {"role": "assistant", "p": pad})]
    index = 0
    if reply.thinking is not None:
        for part in fragments(reply.thinking, reply.chunk_size):
            delta = {"reasoningContent": {"text": part}}
            out.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": delta, "p": pad}))
        signature = {"reasoningContent": {"signature": reply.signature()}}
        out.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": signature, "p": pad}))
        out.append(("contentBlockStop", {"contentBlockIndex": index, "p": pad}))
        index += 1
    if reply.text:
        for part in fragments(reply.text, reply.chunk_size):
            out.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": part}, "p": pad}))
        out.append(("contentBlockStop", {"contentBlockIndex": index, "p": pad}))
        index += 1
    for number, call in enumerate(reply.tool_calls):
        start = {"toolUse": {"toolUseId": _tool_id(ctx, number, call.id), "name": call.name}}
        out.append(("contentBlockStart", {"contentBlockIndex": index, "start": start, "p": pad}))
        for part in fragments(call.arguments_json(), reply.chunk_size):
            delta = {"toolUse": {"input": part}}
            out.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": delta, "p": pad}))
        out.append(("contentBlockStop", {"contentBlockIndex": index, "p": pad}))
        index += 1
    out.append(("messageStop", {"stopReason": _stop_reason(reply), "p": pad}))
    out.append(("metadata", {"usage": _usage(ctx), "metrics": {"latencyMs": 42}, "p": pad}))
    return out
