"""Canonical request -> the body for an Anthropic upstream.

An Anthropic client's request is passed through: the body starts as the client's own, and only the
fields whose canonical value changed since decoding (routing, a transformer or the provider's rules
edited them, copy-on-write: ``ccrouter.messages.Received``) are encoded again. Lists are merged item
by item: a message, block, system block or tool that is still the object the decoder made is sent as
the client wrote it, so cache_control placement, thinking signatures and fields we do not model
survive byte for byte. Any other request is built from the canonical fields.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson

from ccrouter.codecs.anthropic.stream import encode_block, thinking_origin
from ccrouter.messages import (
    ContentBlock,
    Message,
    MessagesRequest,
    Received,
    TextBlock,
    ThinkingBlock,
    ThinkingConfig,
    Tool,
    ToolChoice,
)

__all__ = ["dumps_as_received", "encode_request", "encode_request_json"]

JSON = dict[str, Any]
T = TypeVar("T")

# Anthropic's minimum thinking budget; used when a foreign request asks for thinking without one.
_MIN_THINKING_BUDGET = 1024
# What a field held when the decoder made it, for fields the client left out.
_ABSENT = object()


def encode_request(request: MessagesRequest, model: str, *, stream: bool) -> dict[str, Any]:
    """Canonical -> the body for an Anthropic upstream (passthrough of an Anthropic client's body)."""
    received = request.received
    if received is not None and received.format == "anthropic":
        return _passthrough(request, received, model, stream)
    return _build(request, model, stream)


def encode_request_json(request: MessagesRequest, model: str, *, stream: bool) -> bytes:
    """``encode_request`` serialised. A passthrough sends the client's own bytes for every top-level
    field left as it came (``Received.parts``) and serialises only what changed."""
    return dumps_as_received(encode_request(request, model, stream=stream), request)


def dumps_as_received(body: dict[str, Any], request: MessagesRequest) -> bytes:
    """``body`` serialised, with the client's own bytes for every top-level field of an Anthropic
    request that is still the object it decoded (the rest serialised anew)."""
    received = request.received
    parts = received.parts if received is not None and received.format == "anthropic" else None
    if parts is None:
        return orjson.dumps(body)
    out: list[Any] = []
    for key, value in body.items():
        part = parts.get(key)
        out.append(b"," if out else b"{")
        out.append(orjson.dumps(key))
        out.append(b":")
        out.append(part[1] if part is not None and part[0] is value else orjson.dumps(value))
    out.append(b"}" if out else b"{}")
    return b"".join(out)


# --------------------------------------------------------------------------- passthrough


def _passthrough(request: MessagesRequest, received: Received, model: str, stream: bool) -> JSON:
    raw, decoded = received.body, received.decoded
    body = dict(raw)
    body["model"] = model
    if request.max_tokens > 0:
        body["max_tokens"] = request.max_tokens
    body["stream"] = stream
    if request.extra is not decoded.extra:
        _put_extra(body, request.extra, decoded.extra)
    if request.system is not decoded.system:
        blocks = _merged(request.system, decoded.system, _items(raw.get("system")), _system_block)
        _put(body, "system", blocks or None)
    if request.messages is not decoded.messages:
        body["messages"] = _merged_messages(request.messages, decoded.messages, raw.get("messages"))
    if request.tools is not decoded.tools:
        _put(body, "tools", _merged(request.tools, decoded.tools, raw.get("tools"), _encode_tool) or None)
    if request.tool_choice != decoded.tool_choice:
        choice = request.tool_choice
        _put(body, "tool_choice", None if choice is None else _encode_tool_choice(choice))
    if request.thinking != decoded.thinking:
        body["thinking"] = _thinking(request.thinking, request.max_tokens) or {"type": "disabled"}
    if request.effort != decoded.effort:
        _put_effort(body, request.effort)
    for key in ("temperature", "top_p", "top_k"):
        value = getattr(request, key)
        if value != getattr(decoded, key):
            _put(body, key, value)
    if request.stop_sequences != decoded.stop_sequences:
        _put(body, "stop_sequences", request.stop_sequences or None)
    if request.metadata is not decoded.metadata:
        _put(body, "metadata", request.metadata or None)
    _drop_unverifiable(body, request.messages)
    return body


def _put(body: JSON, key: str, value: Any) -> None:
    if value is None:
        body.pop(key, None)
    else:
        body[key] = value


def _put_extra(body: JSON, extra: JSON, decoded: JSON) -> None:
    for key in decoded:
        if key not in extra:
            body.pop(key, None)
    for key, value in extra.items():
        if decoded.get(key, _ABSENT) is not value:
            body[key] = value


def _put_effort(body: JSON, effort: str | None) -> None:
    config = body.get("output_config")
    config = dict(config) if isinstance(config, dict) else {}
    if effort is None:
        config.pop("effort", None)
    else:
        config["effort"] = effort
    _put(body, "output_config", config or None)


def _items(value: Any) -> Any:
    """A ``system`` or ``content`` value as a list of blocks (the string form is one text block)."""
    return [{"type": "text", "text": value}] if isinstance(value, str) and value else value


def _merged(
    current: Sequence[T], decoded: Sequence[T], raw: Any, encode: Callable[[T, Any, T | None], JSON | None]
) -> list[Any]:
    """``current`` on the wire: the client's item for each item still the decoder's (``raw`` holds
    the client's items, one per decoded item), ``encode(item, client, before)`` for the others (None
    drops it), ``client`` and ``before`` being the client's and the decoder's item at its place: the
    one after the last item kept."""
    usable = isinstance(raw, list) and len(raw) == len(decoded)
    where = {id(item): index for index, item in enumerate(decoded)} if usable else {}
    out: list[Any] = []
    cursor = 0
    for item in current:
        index = where.get(id(item))
        if index is not None:
            out.append(raw[index])
            cursor = index + 1
            continue
        there = usable and cursor < len(raw)
        encoded = encode(item, raw[cursor] if there else None, decoded[cursor] if there else None)
        cursor += 1
        if encoded is not None:
            out.append(encoded)
    return out


def _merged_messages(current: list[Message], decoded: list[Message], raw: Any) -> list[Any]:
    if not isinstance(raw, list) or len(raw) != len(decoded):
        return _encode_messages(current)
    if len(current) != len(decoded):
        return _merged(current, decoded, raw, _changed_message)
    # Edits keep messages in place (the common case): no index to build over a long history.
    out: list[Any] = []
    for message, before, client in zip(current, decoded, raw, strict=True):
        if message is before:
            out.append(client)
        else:
            encoded = _changed_message(message, client, before)
            if encoded is not None:
                out.append(encoded)
    return out


def _changed_message(message: Message, client: Any, before: Message | None) -> JSON | None:
    """A message that is not the decoder's: the client's blocks where ``message`` still holds them
    (``client`` and ``before`` are the client's and the decoded message at its place)."""
    client = client if isinstance(client, dict) and before is not None else None
    original = client.get("content") if client is not None else None
    previous: Sequence[ContentBlock] = before.content if before is not None else ()
    blocks = _merged(message.content, previous, _items(original), _content_block)
    if not blocks:
        return None  # Anthropic rejects empty content
    if isinstance(original, str) and len(blocks) == 1 and blocks[0].keys() == {"type", "text"}:
        content: Any = blocks[0]["text"]
    else:
        content = blocks
    return {**(client or {}), "role": message.role, "content": content}


def _system_block(block: TextBlock, client: Any, _before: Any = None) -> JSON | None:
    return _text_block(block, client) if block.text else None


def _content_block(block: ContentBlock, client: Any, _before: Any = None) -> JSON | None:
    if isinstance(block, TextBlock):
        return _text_block(block, client) if block.text else None
    return encode_block(block) if _keep_in_request(block) else None


def _text_block(block: TextBlock, client: Any) -> JSON:
    """An edited text block keeps what else the client's block at its place had (citations...)."""
    if not isinstance(client, dict) or client.get("type") != "text":
        return encode_block(block)
    out = {**client, "text": block.text}
    _put(out, "cache_control", block.cache_control)
    return out


def _is_unverifiable(block: Any) -> bool:
    """Thinking Anthropic would reject: produced by another provider, or unsigned."""
    if not isinstance(block, dict) or block.get("type") != "thinking":
        return False
    signature = block.get("signature")
    # Not a string (a client's wrong value): unsigned, as the decoder read it.
    return not isinstance(signature, str) or not signature or thinking_origin(signature) != "anthropic"


def _has_unverifiable(messages: list[Message]) -> bool:
    """``_is_unverifiable`` over the canonical blocks, which mirror the body (a cheaper walk than the
    dicts; this runs over every block of every passthrough request)."""
    for message in messages:
        for block in message.content:
            if (
                type(block) is ThinkingBlock
                and not block.redacted
                and (not block.signature or block.origin != "anthropic")
            ):
                return True
    return False


def _drop_unverifiable(body: JSON, canonical: list[Message]) -> None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not _has_unverifiable(canonical):
        return
    rebuilt: list[Any] | None = None
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        # Runs over every block of every request: a plain loop, the common "no thinking" case first.
        for block in content:
            if isinstance(block, dict) and block.get("type") == "thinking" and _is_unverifiable(block):
                break
        else:
            continue
        if rebuilt is None:
            rebuilt = list(messages)  # copy the list only; untouched messages stay shared
        kept = [block for block in content if not _is_unverifiable(block)]
        rebuilt[i] = {**message, "content": kept} if kept else None
    if rebuilt is not None:
        # A message left empty is dropped: Anthropic rejects empty content and merges the
        # consecutive same-role turns this may leave.
        body["messages"] = [message for message in rebuilt if message is not None]


# --------------------------------------------------------------------------- built from canonical


def _build(request: MessagesRequest, model: str, stream: bool) -> JSON:
    # Unknown fields of an OpenAI-born request are OpenAI fields; Anthropic would reject them.
    received = request.received
    foreign = received is not None and received.format != "anthropic"
    body: JSON = {} if foreign else dict(request.extra)
    body["model"] = model
    body["max_tokens"] = request.max_tokens
    system = [encode_block(block) for block in request.system if block.text]
    if system:
        body["system"] = system
    body["messages"] = _encode_messages(request.messages)
    _put_sampling(body, request)
    if request.tools:
        body["tools"] = [_encode_tool(tool) for tool in request.tools]
    if request.tool_choice is not None:
        body["tool_choice"] = _encode_tool_choice(request.tool_choice)
    thinking = _thinking(request.thinking, request.max_tokens)
    if thinking is not None:
        body["thinking"] = thinking
    if request.effort is not None:
        output_config = body.get("output_config")
        output_config = output_config if isinstance(output_config, dict) else {}
        if output_config.get("effort") != request.effort:
            body["output_config"] = {**output_config, "effort": request.effort}
    if "user_id" in request.metadata:
        # Anthropic's metadata accepts only user_id.
        body["metadata"] = {"user_id": request.metadata["user_id"]}
    body["stream"] = stream
    return body


def _thinking(thinking: ThinkingConfig, max_tokens: int) -> JSON | None:
    """The ``thinking`` field, None when disabled."""
    if thinking.type == "enabled":
        budget = thinking.budget_tokens or max(_MIN_THINKING_BUDGET, max_tokens // 2)
        return {"type": "enabled", "budget_tokens": budget}
    if thinking.type == "adaptive":
        return {"type": "adaptive"}
    return None


def _put_sampling(body: JSON, request: MessagesRequest) -> None:
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.top_k is not None:
        body["top_k"] = request.top_k
    if request.stop_sequences:
        body["stop_sequences"] = request.stop_sequences


def _keep_in_request(block: ContentBlock) -> bool:
    if isinstance(block, ThinkingBlock):
        return block.redacted or (bool(block.signature) and block.origin == "anthropic")
    # Anthropic rejects empty text blocks ("text content blocks must be non-empty").
    return not (isinstance(block, TextBlock) and not block.text)


def _encode_messages(messages: list[Message]) -> list[JSON]:
    out = []
    for message in messages:
        content = [encode_block(block) for block in message.content if _keep_in_request(block)]
        # System messages stay in place: Anthropic accepts role "system" inside messages.
        if content:
            out.append({"role": message.role, "content": content})
    return out


def _encode_tool(tool: Tool, _client: Any = None, _before: Any = None) -> JSON:
    if tool.server_type is not None:
        return tool.raw if tool.raw is not None else {"type": tool.server_type, "name": tool.name}
    out: JSON = {"name": tool.name}
    if tool.description is not None:
        out["description"] = tool.description
    # Anthropic requires an object schema; an empty one means "no parameters".
    out["input_schema"] = tool.input_schema or {"type": "object", "properties": {}}
    if tool.cache_control is not None:
        out["cache_control"] = tool.cache_control
    if tool.defer_loading:
        out["defer_loading"] = True
    return out


def _encode_tool_choice(choice: ToolChoice) -> JSON:
    out: JSON = {"type": choice.type}
    if choice.type == "tool":
        out["name"] = choice.name
    # disable_parallel_tool_use is not accepted with type "none".
    if choice.disable_parallel_tool_use and choice.type != "none":
        out["disable_parallel_tool_use"] = True
    return out
