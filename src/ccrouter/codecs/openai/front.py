"""The OpenAI front side: clients that call our ``POST /v1/chat/completions``.

``decode_request`` reads their body into the canonical request; ``encode_response`` and
``error_body`` answer in their format (streams: ``stream.OpenAIStreamEncoder``). The public
names are re-exported by ``chat``. Reference: https://platform.openai.com/docs/api-reference/chat
"""

from __future__ import annotations

import time
from typing import Any, Literal

import orjson

from ccrouter.codecs.ids import OPENAI_ID_PREFIX, client_id
from ccrouter.codecs.openai.toolnames import parse_arguments
from ccrouter.errors import RequestError
from ccrouter.messages import (
    ContentBlock,
    ImageBlock,
    Message,
    MessagesRequest,
    MessagesResponse,
    OtherBlock,
    Received,
    StopReason,
    TextBlock,
    ThinkingBlock,
    ThinkingConfig,
    Tool,
    ToolChoice,
    ToolResultBlock,
    ToolResultPart,
    ToolUseBlock,
    Usage,
)

__all__ = [
    "THINKING_SIGNATURE",
    "DecodedItem",
    "decode_item",
    "decode_request",
    "decode_tools",
    "encode_response",
    "error_body",
    "finish_reason_for",
    "include_usage",
    "usage_to_openai",
]

JSON = dict[str, Any]
# Thinking produced by an OpenAI-format provider (messages.py: ``ccr:<wire>``).
THINKING_SIGNATURE = "ccr:openai"
DEFAULT_MAX_TOKENS = 4096
_ROLES = "system, developer, user, assistant, tool"
_TOOL_CHOICES: dict[str, Literal["auto", "none", "any"]] = {"auto": "auto", "none": "none", "required": "any"}
# reasoning_effort -> (Anthropic effort, thinking budget). Budgets sit inside the bands the upstream
# encoder maps back (low < 4096 <= medium < 16384 <= high), so a round trip keeps the effort.
_EFFORTS = {
    "minimal": ("low", 2048),
    "low": ("low", 2048),
    "medium": ("medium", 8192),
    "high": ("high", 16384),
    "xhigh": ("high", 32768),
}


# =========================================================================== request


def decode_request(
    body: JSON, *, items: list[DecodedItem] | None = None, tools: list[Tool] | None = None
) -> MessagesRequest:
    """A canonical request from an OpenAI client's chat-completions body (kept as ``received``).
    ``items`` and ``tools`` are ``body["messages"]`` and ``body["tools"]`` when the caller already
    decoded them (``ccrouter.codecs.openai.body``)."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("model: required, a non-empty string")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise RequestError("messages: required, a non-empty array of message objects")
    system, messages = _assemble(items) if items is not None else _messages(raw_messages)
    thinking, effort = _reasoning(body.get("reasoning_effort"))
    user = body.get("user")
    request = MessagesRequest(
        model=model,
        messages=messages,
        max_tokens=_max_tokens(body),
        system=system,
        stream=body.get("stream") is True,
        temperature=_number(body, "temperature"),
        top_p=_number(body, "top_p"),
        stop_sequences=_stop(body.get("stop")),
        tools=decode_tools(body.get("tools")) if tools is None else tools,
        tool_choice=_tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls")),
        thinking=thinking,
        effort=effort,
        metadata={"user_id": user} if isinstance(user, str) and user else {},
    )
    request.received = Received("openai", body, request.copy())
    return request


def include_usage(request: MessagesRequest) -> bool:
    """Whether the OpenAI client asked for the usage chunk at the end of its stream
    (``stream_options.include_usage``)."""
    received = request.received
    if received is None or received.format != "openai":
        return False
    options = received.body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


def _max_tokens(body: JSON) -> int:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise RequestError(f"{key}: expected a positive integer, got {value!r}")
        return value
    return DEFAULT_MAX_TOKENS


def _number(body: JSON, key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise RequestError(f"{key}: expected a number, got {value!r}")
    return float(value)


def _stop(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item for item in value if item]
    raise RequestError("stop: expected a string or an array of strings")


def _reasoning(value: object) -> tuple[ThinkingConfig, str | None]:
    if value is None or value == "none":
        return ThinkingConfig(), None
    mapped = _EFFORTS.get(value) if isinstance(value, str) else None
    if mapped is None:
        raise RequestError(f"reasoning_effort: expected one of none, {', '.join(_EFFORTS)}; got {value!r}")
    effort, budget = mapped
    return ThinkingConfig(type="enabled", budget_tokens=budget), effort


def decode_tools(value: object) -> list[Tool]:
    """The body's ``tools`` value."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise RequestError("tools: expected an array")
    tools = []
    for index, item in enumerate(value):
        function = item.get("function") if isinstance(item, dict) else None
        if not isinstance(function, dict) or item.get("type", "function") != "function":
            continue  # only function tools have a canonical meaning
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise RequestError(f"tools[{index}].function.name: required, a non-empty string")
        schema = function.get("parameters")
        description = function.get("description")
        tools.append(
            Tool(
                name=name,
                description=description if isinstance(description, str) else None,
                input_schema=schema if isinstance(schema, dict) else {"type": "object", "properties": {}},
            )
        )
    return tools


def _tool_choice(value: object, parallel: object) -> ToolChoice | None:
    choice: ToolChoice | None
    if value is None:
        choice = None
    elif isinstance(value, str) and value in _TOOL_CHOICES:
        choice = ToolChoice(type=_TOOL_CHOICES[value])
    elif isinstance(value, dict) and isinstance(value.get("function"), dict):
        name = value["function"].get("name")
        if not isinstance(name, str) or not name:
            raise RequestError("tool_choice.function.name: required, a non-empty string")
        choice = ToolChoice(type="tool", name=name)
    elif isinstance(value, dict):  # allowed_tools and future shapes: let the model choose
        choice = ToolChoice(type="auto")
    else:
        raise RequestError(f"tool_choice: expected auto, none, required or a function object; got {value!r}")
    if parallel is False:
        choice = choice or ToolChoice(type="auto")
        choice.disable_parallel_tool_use = True
    return choice


# --------------------------------------------------------------------------- messages


# One client message decoded on its own: the system prompt's blocks, a tool result, or a user or
# assistant message's blocks. ``decode_item`` is pure, so a body decoder may cache it by the item's
# bytes (``ccrouter.codecs.openai.body``); ``_assemble`` joins the items into canonical messages.
DecodedItem = tuple[str, list[ContentBlock] | ToolResultBlock]


def decode_item(item: Any, index: int) -> DecodedItem:
    """The ``messages[index]`` item of a client's body."""
    path = f"messages[{index}]"
    if not isinstance(item, dict):
        raise RequestError(f"{path}: expected an object")
    role = item.get("role")
    if role in ("system", "developer"):
        return "system", [TextBlock(text=text) for text in _texts(item.get("content"), path) if text]
    if role == "tool":
        return "tool", _tool_result(item, path)
    if role == "user":
        return "user", _user_content(item.get("content"), path)
    if role == "assistant":
        return "assistant", _assistant_content(item, path)
    raise RequestError(f"{path}.role: expected one of {_ROLES}; got {role!r}")


def _messages(items: list[Any]) -> tuple[list[TextBlock], list[Message]]:
    return _assemble([decode_item(item, index) for index, item in enumerate(items)])


def _assemble(items: list[DecodedItem]) -> tuple[list[TextBlock], list[Message]]:
    """Leading system/developer messages become the system prompt, later ones stay in place; tool
    messages (and a user message right after them) join one user message, as Anthropic expects.
    Every message gets lists of its own: decoded items may be shared with other requests."""
    system: list[TextBlock] = []
    out: list[Message] = []
    after_tool = False
    for role, decoded in items:
        if isinstance(decoded, ToolResultBlock):  # role "tool"
            if after_tool:
                out[-1].content.append(decoded)
            else:
                out.append(Message(role="user", content=[decoded]))
            after_tool = True
            continue
        if role == "system":
            blocks = [block for block in decoded if isinstance(block, TextBlock)]
            if out:
                out.append(Message(role="system", content=list(blocks)))
            else:
                system.extend(blocks)
        elif role == "user":
            if after_tool:
                out[-1].content.extend(decoded)
            elif decoded:
                out.append(Message(role="user", content=list(decoded)))
        elif decoded:  # assistant
            out.append(Message(role="assistant", content=list(decoded)))
        after_tool = False
    return system, out


def _texts(content: object, path: str) -> list[str]:
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
    raise RequestError(f"{path}.content: expected a string or an array of content parts")


def _user_content(content: object, path: str) -> list[ContentBlock]:
    if content is None or isinstance(content, str):
        return [TextBlock(text=content)] if content else []
    if not isinstance(content, list):
        raise RequestError(f"{path}.content: expected a string or an array of content parts")
    blocks: list[ContentBlock] = []
    for part in content:
        if not isinstance(part, dict):
            raise RequestError(f"{path}.content: every part must be an object")
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            if part["text"]:
                blocks.append(TextBlock(text=part["text"]))
        elif kind == "image_url":
            blocks.append(_image(part.get("image_url"), path))
        else:  # input_audio, file...: kept for a same-format upstream, dropped by others
            blocks.append(OtherBlock(raw=part))
    return blocks


def _image(value: object, path: str) -> ImageBlock:
    url = value.get("url") if isinstance(value, dict) else value
    if not isinstance(url, str) or not url:
        raise RequestError(f"{path}.content: image_url.url is required")
    if url.startswith("data:") and ";base64," in url:
        header, _, data = url.partition(";base64,")
        return ImageBlock(media_type=header[len("data:") :] or None, data=data)
    return ImageBlock(url=url)


def _assistant_content(item: JSON, path: str) -> list[ContentBlock]:
    blocks: list[ContentBlock] = []
    reasoning = item.get("reasoning_content") or item.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        blocks.append(ThinkingBlock(thinking=reasoning, signature=THINKING_SIGNATURE, origin="openai"))
    content = item.get("content")
    if isinstance(content, list):  # text and refusal parts
        texts = [p.get("text") or p.get("refusal") for p in content if isinstance(p, dict)]
        text = "".join(t for t in texts if isinstance(t, str))
    else:
        text = "".join(_texts(content, path))
    if text:
        blocks.append(TextBlock(text=text))
    calls = item.get("tool_calls") or []
    if not isinstance(calls, list):
        raise RequestError(f"{path}.tool_calls: expected an array")
    for index, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        call_id = call.get("id") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise RequestError(f"{path}.tool_calls[{index}].function.name: required")
        if not isinstance(call_id, str) or not call_id:
            raise RequestError(f"{path}.tool_calls[{index}].id: required, a non-empty string")
        blocks.append(
            ToolUseBlock(id=call_id, name=function["name"], input=parse_arguments(function.get("arguments")))
        )
    return blocks


def _tool_result(item: JSON, path: str) -> ToolResultBlock:
    call_id = item.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise RequestError(f"{path}.tool_call_id: required, a non-empty string")
    parts = _user_content(item.get("content"), path)
    content: list[ToolResultPart] = [part for part in parts if isinstance(part, TextBlock | ImageBlock)]
    return ToolResultBlock(tool_use_id=call_id, content=content)


# =========================================================================== response

_FINISH_REASONS = {"max_tokens": "length", "tool_use": "tool_calls", "refusal": "content_filter"}


def finish_reason_for(stop_reason: StopReason | None) -> str:
    """OpenAI finish_reason for an Anthropic stop reason."""
    return _FINISH_REASONS.get(stop_reason or "end_turn", "stop")


def usage_to_openai(usage: Usage) -> JSON:
    """OpenAI usage: prompt_tokens count cached input too."""
    prompt = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_input_tokens},
    }


def encode_response(response: MessagesResponse, model: str, *, created: int | None = None) -> bytes:
    """A chat.completion body for an OpenAI client (the upstream body itself when it spoke OpenAI)."""
    if response.raw_format == "openai" and response.raw_body is not None:
        return response.raw_body
    texts, thinking, calls = [], [], []
    for block in response.content:
        if isinstance(block, TextBlock):
            texts.append(block.text)
        elif isinstance(block, ThinkingBlock) and not block.redacted:
            thinking.append(block.thinking)
        elif isinstance(block, ToolUseBlock):
            calls.append(
                {
                    "id": block.id,
                    "type": "function",
                    "function": {"name": block.name, "arguments": orjson.dumps(block.input).decode()},
                }
            )
    message: JSON = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    if thinking:
        message["reasoning_content"] = "".join(thinking)
    finish_reason = finish_reason_for(response.stop_reason)
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
    body = {
        "id": client_id(response.id, OPENAI_ID_PREFIX),
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": model,
        "choices": [choice],
        "usage": usage_to_openai(response.usage),
    }
    return orjson.dumps(body)


# Anthropic error types -> OpenAI's names for them (the SDKs key on the HTTP status, not the type).
_OPENAI_ERROR_TYPES = {
    "request_too_large": "invalid_request_error",
    "rate_limit_error": "rate_limit_exceeded",
    "overloaded_error": "server_error",
    "api_error": "server_error",
    "timeout_error": "server_error",
}


def error_body(error_type: str, message: str) -> bytes:
    """OpenAI's error envelope for an (Anthropic) error type."""
    kind = _OPENAI_ERROR_TYPES.get(error_type, error_type)
    return orjson.dumps({"error": {"message": message, "type": kind, "param": None, "code": None}})
