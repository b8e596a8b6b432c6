"""OpenAI Responses API ``Response`` object -> canonical response, upstream direction; and the pieces
the stream decoder shares (usage, stop reason, failures).

Reference: https://platform.openai.com/docs/api-reference/responses/object. Output items map in order:
a ``message`` item's ``output_text`` parts -> text blocks (a ``refusal`` part -> text, stop reason
``refusal``); a ``function_call`` -> ``tool_use`` (stop reason ``tool_use``); a ``reasoning`` item ->
a thinking block holding its summaries (the raw chain of thought is never returned by OpenAI; servers
of open-weight models may send it as ``reasoning_text`` content, used when there is no summary). Other
items (hosted tools) are dropped. ``status: incomplete`` with ``incomplete_details.reason:
max_output_tokens`` -> ``max_tokens``; ``content_filter`` -> ``refusal``; ``status: failed`` raises
the upstream error its ``error.code`` stands for.

Usage: OpenAI's ``input_tokens`` include the cached ones (``input_tokens_details.cached_tokens``),
Anthropic's exclude them; ``output_tokens`` include the reasoning tokens on both sides.
"""

from __future__ import annotations

from typing import Any

import orjson

from ccrouter.codecs.openai.chat import error_status
from ccrouter.codecs.openai.toolnames import ToolNames, parse_arguments
from ccrouter.errors import UpstreamError, UpstreamProtocolError, upstream_error_for_status
from ccrouter.messages import (
    ContentBlock,
    MessagesResponse,
    StopReason,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    Usage,
)

__all__ = [
    "THINKING_SIGNATURE",
    "WIRE",
    "decode_response",
    "failure",
    "failure_status",
    "output_blocks",
    "reasoning_text",
    "stop_reason_for",
    "usage_from_responses",
]

JSON = dict[str, Any]
WIRE = "openai_responses"
# Thinking produced by this wire (``messages``: ``ccr:<wire>``); never sent back (``request``).
THINKING_SIGNATURE = f"ccr:{WIRE}"
# Codes of ``Response.error`` / the ``error`` event that are the request's fault, beyond the ones
# ``openai.chat.error_status`` knows (openai.types.responses.ResponseError.code).
_CLIENT_CODES = frozenset(
    {"invalid_prompt", "bio_policy", "data_residency_mismatch", "misalignment_policy_violation"}
)
_STATUS_BY_CODE = {"server_error": 500, "vector_store_timeout": 504}


def decode_response(body: bytes, names: ToolNames, *, provider: str = "") -> MessagesResponse:
    """A canonical response from a Responses API ``Response`` body."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UpstreamProtocolError(
            _named(provider, f"response is not JSON ({exc})"), provider=provider
        ) from exc
    if not isinstance(data, dict):
        raise UpstreamProtocolError(_named(provider, "response is not a JSON object"), provider=provider)
    status = data.get("status")
    if status == "failed" or (data.get("error") and "output" not in data):
        raise failure(data.get("error"), provider)
    if status not in ("completed", "incomplete", None):
        raise UpstreamProtocolError(
            _named(provider, f"response is not finished (status {status!r})"), provider=provider
        )
    output = data.get("output")
    if not isinstance(output, list):
        raise UpstreamProtocolError(_named(provider, "response has no output list"), provider=provider)
    content, refused = output_blocks(output, names)
    tool_use = any(isinstance(block, ToolUseBlock) for block in content)
    return MessagesResponse(
        id=str(data.get("id") or names.fresh_id("msg")),
        model=str(data.get("model") or ""),
        content=content,
        stop_reason=stop_reason_for(data, tool_use=tool_use, refused=refused),
        usage=usage_from_responses(data.get("usage")),
        raw_body=body,
        raw_format=WIRE,
    )


def output_blocks(output: list[Any], names: ToolNames) -> tuple[list[ContentBlock], bool]:
    content: list[ContentBlock] = []
    refused = False
    for item in output:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "message":
            parts = item.get("content")
            for part in parts if isinstance(parts, list) else ():
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "output_text" and isinstance(part.get("text"), str) and part["text"]:
                    content.append(TextBlock(text=part["text"]))
                elif part.get("type") == "refusal" and isinstance(part.get("refusal"), str):
                    refused = True
                    content.append(TextBlock(text=part["refusal"]))
        elif kind == "function_call":
            name = item.get("name")
            if isinstance(name, str) and name:
                content.append(
                    ToolUseBlock(
                        id=names.from_wire_id(item.get("call_id") or None),
                        name=names.from_wire_name(name),
                        input=parse_arguments(item.get("arguments")),
                    )
                )
        elif kind == "reasoning":
            text = reasoning_text(item)
            if text:
                content.append(ThinkingBlock(thinking=text, signature=THINKING_SIGNATURE, origin=WIRE))
    return content, refused


def reasoning_text(item: JSON) -> str:
    """A reasoning item's summaries (``\\n\\n`` between them), else its ``reasoning_text`` content."""
    for key, kind in (("summary", "summary_text"), ("content", "reasoning_text")):
        parts = item.get(key)
        texts = [
            part["text"]
            for part in (parts if isinstance(parts, list) else ())
            if isinstance(part, dict) and part.get("type") == kind and isinstance(part.get("text"), str)
        ]
        text = "\n\n".join(t for t in texts if t)
        if text:
            return text
    return ""


def stop_reason_for(response: JSON, *, tool_use: bool, refused: bool) -> StopReason:
    """The Anthropic stop reason of a finished Response. Running out of tokens wins over tool calls:
    the arguments of a cut-off call are incomplete, and Anthropic says ``max_tokens`` then too."""
    if response.get("status") == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        if reason == "content_filter":
            return "refusal"
        return "max_tokens"  # max_output_tokens, or a reason added later: the answer was cut short
    if tool_use:
        return "tool_use"
    return "refusal" if refused else "end_turn"


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_from_responses(usage: object) -> Usage:
    """Anthropic-style usage: ``input_tokens`` without the cached part."""
    if not isinstance(usage, dict):
        return Usage()
    details = usage.get("input_tokens_details")
    details = details if isinstance(details, dict) else {}
    cached = _int(details.get("cached_tokens"))
    written = _int(details.get("cache_write_tokens"))
    return Usage(
        input_tokens=max(0, _int(usage.get("input_tokens")) - cached - written),
        output_tokens=_int(usage.get("output_tokens")),
        cache_read_input_tokens=cached,
        cache_creation_input_tokens=written,
    )


def failure_status(error: object) -> int:
    """The HTTP status a ``Response.error`` or an ``error`` event stands for."""
    if not isinstance(error, dict):
        return 500
    code = error.get("code")
    if isinstance(code, str):
        if code in _STATUS_BY_CODE:
            return _STATUS_BY_CODE[code]
        if code in _CLIENT_CODES or code.startswith(("invalid_", "image_")) or "image" in code:
            return 400
    return error_status(error)


def failure(error: object, provider: str) -> UpstreamError:
    """The upstream error for a failed response or an ``error`` event."""
    message = error.get("message") if isinstance(error, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    text = message if isinstance(message, str) and message else "the response failed"
    if isinstance(code, str) and code and code not in text:
        text = f"{text} ({code})"
    return upstream_error_for_status(failure_status(error), _named(provider, text[:1000]), provider=provider)


def _named(provider: str, message: str) -> str:
    return f"{provider}: {message}" if provider else message
