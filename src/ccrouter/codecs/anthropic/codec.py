"""Anthropic Messages wire format <-> canonical model (https://docs.anthropic.com/en/api/messages).

Decoding is lenient where Anthropic itself is forward compatible (unknown top-level fields go to
``extra``, unknown content blocks to ``OtherBlock``) and strict where a bad shape would only fail
later: those raise ``RequestError`` with Anthropic's own message style (``messages.3.role: ...``).
Encoding a request for an Anthropic upstream lives in ``ccrouter.codecs.anthropic.encode`` (a
passthrough of an Anthropic client's body), streaming in ``ccrouter.codecs.anthropic.stream``; both
are re-exported here.
"""

from __future__ import annotations

from typing import Any, cast

import orjson

from ccrouter.codecs.anthropic.encode import encode_request, encode_request_json
from ccrouter.codecs.anthropic.stream import (
    AnthropicStreamDecoder,
    decode_usage,
    encode_block,
    encode_event,
    encode_usage,
    error_body,
    thinking_origin,
)
from ccrouter.codecs.ids import ANTHROPIC_ID_PREFIX, client_id
from ccrouter.errors import RequestError, UpstreamProtocolError
from ccrouter.messages import (
    ContentBlock,
    ImageBlock,
    Message,
    MessagesRequest,
    MessagesResponse,
    OtherBlock,
    Received,
    Role,
    StopReason,
    TextBlock,
    ThinkingBlock,
    ThinkingConfig,
    Tool,
    ToolChoice,
    ToolReferenceBlock,
    ToolResultBlock,
    ToolResultPart,
    ToolUseBlock,
)

__all__ = [
    "AnthropicStreamDecoder",
    "build_request",
    "decode_message",
    "decode_request",
    "decode_response",
    "decode_system_block",
    "decode_tools",
    "encode_event",
    "encode_request",
    "encode_request_json",
    "encode_response",
    "error_body",
]

JSON = dict[str, Any]

# Top-level request fields the canonical model holds; anything else is kept in ``extra``.
_KNOWN_FIELDS = frozenset(
    {
        "model", "messages", "max_tokens", "system", "stream", "temperature", "top_p", "top_k",
        "stop_sequences", "tools", "tool_choice", "thinking", "metadata",
    }
)  # fmt: skip
_ROLES: frozenset[str] = frozenset({"user", "assistant", "system"})
_TOOL_CHOICES = ("auto", "any", "tool", "none")
_THINKING_TYPES = ("enabled", "adaptive", "disabled")


def _fail(path: str, problem: str) -> RequestError:
    return RequestError(f"{path}: {problem}")


# --------------------------------------------------------------------------- request decoding


def decode_request(body: dict[str, Any], *, require_max_tokens: bool = True) -> MessagesRequest:
    """A client's Messages body -> canonical. ``max_tokens`` is 0 when absent and not required
    (count_tokens bodies have none)."""
    return build_request(body, require_max_tokens=require_max_tokens)


def build_request(
    body: dict[str, Any],
    *,
    require_max_tokens: bool = True,
    messages: list[Message] | None = None,
    tools: list[Tool] | None = None,
    system: list[TextBlock] | None = None,
) -> MessagesRequest:
    """``decode_request``, given the messages, tools and system blocks when the caller already
    decoded them from ``body`` (``ccrouter.codecs.anthropic.body``)."""
    model = body.get("model")
    if model is None:
        raise _fail("model", "Field required")
    if not isinstance(model, str):
        raise _fail("model", "Input should be a valid string")
    raw_messages = body.get("messages")
    if raw_messages is None:
        raise _fail("messages", "Field required")
    if not isinstance(raw_messages, list):
        raise _fail("messages", "Input should be a valid list")
    if messages is None:
        messages = [decode_message(item, f"messages.{i}") for i, item in enumerate(raw_messages)]
    request = MessagesRequest(
        model=model,
        messages=messages,
        max_tokens=_decode_max_tokens(body.get("max_tokens"), require_max_tokens),
        system=_decode_system(body.get("system")) if system is None else system,
        stream=body.get("stream") is True,
        temperature=_decode_number(body, "temperature"),
        top_p=_decode_number(body, "top_p"),
        top_k=_decode_top_k(body.get("top_k")),
        stop_sequences=_decode_stop_sequences(body.get("stop_sequences")),
        tools=decode_tools(body.get("tools")) if tools is None else tools,
        tool_choice=_decode_tool_choice(body.get("tool_choice")),
        thinking=_decode_thinking(body.get("thinking")),
        metadata=_decode_metadata(body.get("metadata")),
        extra={key: value for key, value in body.items() if key not in _KNOWN_FIELDS},
    )
    output_config = request.extra.get("output_config")
    if isinstance(output_config, dict) and isinstance(output_config.get("effort"), str):
        request.effort = output_config["effort"]
    request.received = Received("anthropic", body, request.copy())
    return request


def _decode_max_tokens(value: Any, required: bool) -> int:
    if value is None:
        if required:
            raise _fail("max_tokens", "Field required")
        return 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise _fail("max_tokens", "Input should be a valid integer")
    if value < 1:
        raise _fail("max_tokens", "Input should be greater than or equal to 1")
    return value


def _decode_number(body: JSON, key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _fail(key, "Input should be a valid number")
    return value


def _decode_top_k(value: Any) -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise _fail("top_k", "Input should be a valid integer")
    return value


def _decode_stop_sequences(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail("stop_sequences", "Input should be a valid list")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise _fail(f"stop_sequences.{index}", "Input should be a valid string")
    return value


def _decode_system(value: Any) -> list[TextBlock]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [TextBlock(text=value)]
    if not isinstance(value, list):
        raise _fail("system", "Input should be a valid string or list of text blocks")
    return [decode_system_block(item, i) for i, item in enumerate(value)]


def decode_system_block(item: Any, index: int) -> TextBlock:
    """One block of a list ``system``."""
    if not isinstance(item, dict) or item.get("type") != "text" or not isinstance(item.get("text"), str):
        raise _fail(f"system.{index}", "Input should be a text block")
    return TextBlock(text=item["text"], cache_control=item.get("cache_control"))


def decode_message(item: Any, path: str) -> Message:
    """One request message (``path`` names it in errors, e.g. ``messages.3``)."""
    if not isinstance(item, dict):
        raise _fail(path, "Input should be a valid dictionary")
    role = item.get("role")
    if not isinstance(role, str) or role not in _ROLES:
        raise _fail(f"{path}.role", "Input should be 'user' or 'assistant'")
    content = item.get("content")
    if isinstance(content, str):
        blocks: list[ContentBlock] = [TextBlock(text=content)] if content else []
    elif isinstance(content, list):
        blocks = [_decode_block(block, f"{path}.content.{i}") for i, block in enumerate(content)]
    elif content is None:
        raise _fail(f"{path}.content", "Field required")
    else:
        raise _fail(f"{path}.content", "Input should be a valid string or list")
    return Message(role=cast(Role, role), content=blocks)


def _text(block: JSON, key: str, path: str) -> str:
    value = block.get(key)
    if not isinstance(value, str):
        raise _fail(f"{path}.{key}", "Field required" if value is None else "Input should be a valid string")
    return value


def _decode_block(block: Any, path: str) -> ContentBlock:
    """One request content block; kinds we do not model become ``OtherBlock``."""
    if not isinstance(block, dict):
        raise _fail(path, "Input should be a valid dictionary")
    kind = block.get("type")
    if kind == "text":
        return TextBlock(text=_text(block, "text", path), cache_control=block.get("cache_control"))
    if kind == "tool_use":
        tool_input = block.get("input")
        if tool_input is not None and not isinstance(tool_input, dict):
            raise _fail(f"{path}.input", "Input should be a valid dictionary")
        return ToolUseBlock(
            id=_text(block, "id", path),
            name=_text(block, "name", path),
            input=tool_input or {},
            cache_control=block.get("cache_control"),
        )
    if kind == "tool_result":
        return ToolResultBlock(
            tool_use_id=_text(block, "tool_use_id", path),
            content=_decode_tool_result_content(block.get("content"), f"{path}.content"),
            is_error=block.get("is_error") is True,
            cache_control=block.get("cache_control"),
        )
    if kind == "thinking":
        signature = block.get("signature")
        signature = signature if isinstance(signature, str) else None
        return ThinkingBlock(
            thinking=_text(block, "thinking", path), signature=signature, origin=thinking_origin(signature)
        )
    if kind == "redacted_thinking":
        return ThinkingBlock(redacted=True, data=_text(block, "data", path))
    if kind == "image":
        image = _decode_image(block)
        if image is not None:
            return image
    return OtherBlock(raw=block)


def _decode_image(block: JSON) -> ImageBlock | None:
    """base64 and url sources; other sources (``file``) stay an ``OtherBlock``."""
    source = block.get("source")
    if not isinstance(source, dict):
        return None
    cache_control = block.get("cache_control")
    if source.get("type") == "base64":
        return ImageBlock(
            media_type=source.get("media_type"), data=source.get("data"), cache_control=cache_control
        )
    if source.get("type") == "url":
        return ImageBlock(url=source.get("url"), cache_control=cache_control)
    return None


def _decode_tool_result_content(content: Any, path: str) -> list[ToolResultPart]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [TextBlock(text=content)]
    if not isinstance(content, list):
        raise _fail(path, "Input should be a valid string or list")
    parts: list[ToolResultPart] = []
    for i, item in enumerate(content):
        if isinstance(item, dict) and item.get("type") == "tool_reference":
            # Tool search: the result loads the named (deferred) tool (``ccrouter.codecs.toolsearch``).
            name = _text(item, "tool_name", f"{path}.{i}")
            parts.append(ToolReferenceBlock(tool_name=name, cache_control=item.get("cache_control")))
            continue
        block = _decode_block(item, f"{path}.{i}")
        # Documents and search results inside a tool result have no canonical form; a passthrough
        # still forwards them from ``raw``.
        if isinstance(block, TextBlock | ImageBlock):
            parts.append(block)
    return parts


def decode_tools(value: Any) -> list[Tool]:
    """The request's ``tools`` value."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail("tools", "Input should be a valid list")
    tools = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise _fail(f"tools.{i}", "Input should be a valid dictionary")
        kind = item.get("type")
        if isinstance(kind, str) and kind != "custom" and "input_schema" not in item:
            # Server tools (web_search_20250305...) and Anthropic-defined ones (bash_20250124...);
            # some (mcp_toolset) have no name.
            tools.append(Tool(name=str(item.get("name") or kind), server_type=kind, raw=item))
            continue
        if not isinstance(item.get("name"), str):
            raise _fail(f"tools.{i}.name", "Field required")
        description = item.get("description")
        if description is not None and not isinstance(description, str):
            raise _fail(f"tools.{i}.description", "Input should be a valid string")
        schema = item.get("input_schema")
        if not isinstance(schema, dict):
            raise _fail(f"tools.{i}.input_schema", "Field required")
        tools.append(
            Tool(
                name=item["name"],
                description=description,
                input_schema=schema,  # shared, not copied: schemas are large and never modified
                cache_control=item.get("cache_control"),
                defer_loading=item.get("defer_loading") is True,
            )
        )
    return tools


def _decode_tool_choice(value: Any) -> ToolChoice | None:
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type") not in _TOOL_CHOICES:
        raise _fail("tool_choice.type", "Input should be 'auto', 'any', 'tool' or 'none'")
    name = value.get("name")
    if value["type"] == "tool" and not isinstance(name, str):
        raise _fail("tool_choice.name", "Field required")
    return ToolChoice(
        type=value["type"],
        name=name if isinstance(name, str) else None,
        disable_parallel_tool_use=value.get("disable_parallel_tool_use") is True,
    )


def _decode_thinking(value: Any) -> ThinkingConfig:
    if value is None:
        return ThinkingConfig()
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise _fail("thinking.type", "Input should be 'enabled', 'adaptive' or 'disabled'")
    if value["type"] not in _THINKING_TYPES:
        # A thinking mode newer than this codec: treat it as "the model decides" rather than refuse a
        # request a newer client sends; an Anthropic passthrough still forwards it unchanged.
        return ThinkingConfig(type="adaptive")
    budget = value.get("budget_tokens")
    if value["type"] == "enabled" and (not isinstance(budget, int) or isinstance(budget, bool)):
        raise _fail("thinking.enabled.budget_tokens", "Field required")
    return ThinkingConfig(type=value["type"], budget_tokens=budget if value["type"] == "enabled" else None)


def _decode_metadata(value: Any) -> JSON:
    # Kept as given: Claude Code's user_id is a JSON *string* that must reach Anthropic unchanged.
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail("metadata", "Input should be a valid dictionary")
    return value


# --------------------------------------------------------------------------- responses


def decode_response(body: bytes) -> MessagesResponse:
    """An Anthropic upstream's message body -> canonical (``raw_body`` kept for a passthrough)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UpstreamProtocolError("anthropic response is not valid JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        raise UpstreamProtocolError("anthropic response has no content list")
    content = []
    for i, block in enumerate(data["content"]):
        try:
            content.append(_decode_block(block, f"content.{i}"))
        except RequestError as exc:
            raise UpstreamProtocolError(f"anthropic response: {exc.message}") from exc
    return MessagesResponse(
        id=str(data.get("id") or ""),
        model=str(data.get("model") or ""),
        content=content,
        stop_reason=cast("StopReason | None", data.get("stop_reason")),
        stop_sequence=data.get("stop_sequence"),
        usage=decode_usage(data.get("usage")),
        raw_body=body,
        raw_format="anthropic",
    )


def encode_response(response: MessagesResponse) -> bytes:
    """Canonical -> the body Anthropic's API would return (the upstream's own body when it was one)."""
    if response.raw_format == "anthropic" and response.raw_body:
        return response.raw_body
    return orjson.dumps(
        {
            "id": client_id(response.id, ANTHROPIC_ID_PREFIX),
            "type": "message",
            "role": "assistant",
            "model": response.model,
            "content": [encode_block(block) for block in response.content],
            "stop_reason": response.stop_reason,
            "stop_sequence": response.stop_sequence,
            "usage": encode_usage(response.usage),
        }
    )
