"""The Responses front side: clients that call our ``POST /v1/responses`` (Codex CLI, the OpenAI
SDK's ``client.responses.create``).

``decode_body`` / ``decode_request`` read their body into the canonical request; ``encode_response``
answers with a Response object (streams: ``front_stream.ResponsesStreamEncoder``). Reference:
https://platform.openai.com/docs/api-reference/responses/create

The gateway keeps no conversation state, so whatever needs OpenAI's server-side store is refused
with a 400 that says what to send instead: ``previous_response_id``, ``conversation``, a stored
``prompt``, ``background`` runs and ``item_reference`` input items. The client sends the whole
history as input items each turn (as Codex CLI does, with ``store: false``). ``store`` itself is
accepted and ignored: nothing is stored, and the Response says ``store: false``. Other fields we do
not model (``include``, ``truncation``, ``prompt_cache_key``, ``service_tier``...) are ignored, as the
chat-completions front ignores its own; they stay in ``received`` for a same-format upstream.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import orjson

from ccrouter.codecs.anthropic.stream import thinking_origin
from ccrouter.codecs.body import parse, split_object
from ccrouter.codecs.ids import RESPONSE_ID_PREFIX, client_id
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
    "FORMAT",
    "NAMESPACE_SEPARATOR",
    "decode_body",
    "decode_request",
    "encode_response",
    "function_call_item",
    "incomplete_details",
    "item_ids",
    "namespaced",
    "reasoning_item",
    "response_shell",
    "status_for",
    "tool_namespaces",
    "usage_to_responses",
]

JSON = dict[str, Any]
# ``Received.format`` of a request decoded here.
FORMAT = "responses"
# Between a namespace and the name of one of its tools, in the canonical tool name.
NAMESPACE_SEPARATOR = "__"
# As the chat-completions front (``codecs.openai.front``): Anthropic needs a max_tokens.
DEFAULT_MAX_TOKENS = 4096
# reasoning.effort -> (canonical effort, thinking budget), the bands of the chat front's
# reasoning_effort so that an OpenAI-format upstream gets the same effort back.
_EFFORTS = {
    "minimal": ("low", 2048),
    "low": ("low", 2048),
    "medium": ("medium", 8192),
    "high": ("high", 16384),
    "xhigh": ("high", 32768),
}
_TOOL_CHOICES: dict[str, Literal["auto", "none", "any"]] = {"auto": "auto", "none": "none", "required": "any"}
_NO_STATE = "the gateway keeps no conversation state: send the whole conversation as input items"
# Top-level fields that only mean something with OpenAI's server-side store.
_STATEFUL = {
    "previous_response_id": f"previous_response_id is not supported: {_NO_STATE} (with store: false)",
    "conversation": f"conversation is not supported: {_NO_STATE}",
    "prompt": "prompt (a stored prompt template) is not supported: send instructions and input instead",
}
_ROLES = "user, assistant, system, developer"


# =========================================================================== request


def decode_body(raw: bytes) -> MessagesRequest:
    """A client's body (bytes) -> canonical; malformed or too deeply nested JSON is a 400."""
    return decode_request({name: parse(value) for name, value in split_object(raw).items()})


def decode_request(body: JSON) -> MessagesRequest:
    """A canonical request from a Responses body (kept as ``received``)."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("model: required, a non-empty string")
    for key, message in _STATEFUL.items():
        if body.get(key) is not None:
            raise RequestError(message)
    if body.get("background") is True:
        raise RequestError(f"background: true is not supported: {_NO_STATE}, and wait for the answer")
    _check_text_format(body.get("text"))
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise RequestError("instructions: expected a string")
    system, messages = _input(body.get("input"))
    if instructions:
        system.insert(0, TextBlock(text=instructions))
    thinking, effort = _reasoning(body.get("reasoning"))
    user = body.get("safety_identifier") or body.get("user")
    request = MessagesRequest(
        model=model,
        messages=messages,
        max_tokens=_max_tokens(body.get("max_output_tokens")),
        system=system,
        stream=_bool(body, "stream") is True,
        temperature=_number(body, "temperature"),
        top_p=_number(body, "top_p"),
        tools=_tools(body.get("tools")),
        tool_choice=_tool_choice(body.get("tool_choice"), _bool(body, "parallel_tool_calls")),
        thinking=thinking,
        effort=effort,
        metadata={"user_id": user} if isinstance(user, str) and user else {},
    )
    _check_metadata(body.get("metadata"))
    request.received = Received(FORMAT, body, request.copy())
    return request


def _max_tokens(value: object) -> int:
    if value is None:
        return DEFAULT_MAX_TOKENS
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise RequestError(f"max_output_tokens: expected a positive integer, got {value!r}")
    return value


def _number(body: JSON, key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise RequestError(f"{key}: expected a number, got {value!r}")
    return float(value)


def _bool(body: JSON, key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise RequestError(f"{key}: expected a boolean, got {value!r}")
    return value


def _check_metadata(value: object) -> None:
    if value is None:
        return
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise RequestError("metadata: expected an object of string values")


def _check_text_format(value: object) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise RequestError("text: expected an object")
    fmt = value.get("format")
    kind = fmt.get("type") if isinstance(fmt, dict) else fmt
    if fmt is not None and kind != "text":
        # The canonical request has no output format yet: a schema we cannot enforce is refused
        # rather than silently answered with free text.
        raise RequestError(
            f"text.format: {kind!r} is not supported by the gateway (structured outputs); "
            "only the text format is"
        )


def _reasoning(value: object) -> tuple[ThinkingConfig, str | None]:
    if value is None:
        return ThinkingConfig(), None
    if not isinstance(value, dict):
        raise RequestError("reasoning: expected an object")
    effort = value.get("effort")
    if effort is None or effort == "none":
        return ThinkingConfig(), None
    mapped = _EFFORTS.get(effort) if isinstance(effort, str) else None
    if mapped is None:
        raise RequestError(f"reasoning.effort: expected one of none, {', '.join(_EFFORTS)}; got {effort!r}")
    canonical, budget = mapped
    return ThinkingConfig(type="enabled", budget_tokens=budget), canonical


def _tools(value: object) -> list[Tool]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RequestError("tools: expected an array")
    tools = []
    for index, item in enumerate(value):
        path = f"tools[{index}]"
        if not isinstance(item, dict):
            raise RequestError(f"{path}: expected an object")
        if item.get("type") != "namespace":
            tools.append(_function_tool(item, path))
            continue
        # A namespace groups function tools (Codex CLI sends its sub-agent tools so): each becomes
        # the canonical tool ``<namespace>__<name>``, split back in the calls we answer with.
        namespace, inner = item.get("name"), item.get("tools")
        if not isinstance(namespace, str) or not namespace:
            raise RequestError(f"{path}.name: required, a non-empty string")
        if not isinstance(inner, list):
            raise RequestError(f"{path}.tools: expected an array")
        for number, tool in enumerate(inner):
            where = f"{path}.tools[{number}]"
            if not isinstance(tool, dict):
                raise RequestError(f"{where}: expected an object")
            function = _function_tool(tool, where)
            function.name = namespaced(namespace, function.name)
            tools.append(function)
    return tools


def _function_tool(item: JSON, path: str) -> Tool:
    kind = item.get("type")
    if kind != "function":
        hint = " (Codex CLI: run it with -c web_search=disabled)" if kind == "web_search" else ""
        raise RequestError(
            f"{path}: tools of type {kind!r} are not supported by the gateway, only type "
            "'function' (built-in tools such as web_search, file_search or computer_use run on "
            f"OpenAI's servers){hint}"
        )
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise RequestError(f"{path}.name: required, a non-empty string")
    description = item.get("description")
    schema = item.get("parameters")
    if schema is not None and not isinstance(schema, dict):
        raise RequestError(f"{path}.parameters: expected a JSON Schema object")
    # ``strict`` has no canonical meaning (Anthropic has none): the schema is sent as given.
    return Tool(
        name=name,
        description=description if isinstance(description, str) else None,
        input_schema=schema or {"type": "object", "properties": {}},
    )


def namespaced(namespace: str | None, name: str) -> str:
    """The canonical name of the tool ``name`` of ``namespace`` (None: no namespace)."""
    return f"{namespace}{NAMESPACE_SEPARATOR}{name}" if namespace else name


def tool_namespaces(request: MessagesRequest) -> dict[str, tuple[str, str]]:
    """Canonical tool name -> (namespace, name) for the namespaced tools the client declared."""
    received = request.received
    tools = received.body.get("tools") if received is not None and received.format == FORMAT else None
    found: dict[str, tuple[str, str]] = {}
    for item in tools if isinstance(tools, list) else ():
        if isinstance(item, dict) and item.get("type") == "namespace" and isinstance(item.get("tools"), list):
            for tool in item["tools"]:
                if isinstance(tool, dict) and isinstance(tool.get("name"), str):
                    found[namespaced(item["name"], tool["name"])] = (item["name"], tool["name"])
    return found


def function_call_item(
    item_id: str, block: ToolUseBlock, arguments: str, status: str, namespaces: dict[str, tuple[str, str]]
) -> JSON:
    """A function_call output item for a tool call (its name split back from a namespace)."""
    item: JSON = {"type": "function_call", "id": item_id, "call_id": block.id, "name": block.name}
    if block.name in namespaces:
        item["namespace"], item["name"] = namespaces[block.name]
    item["arguments"] = arguments
    item["status"] = status
    return item


def _tool_choice(value: object, parallel: bool | None) -> ToolChoice | None:
    choice: ToolChoice | None
    if value is None:
        choice = None
    elif isinstance(value, str) and value in _TOOL_CHOICES:
        choice = ToolChoice(type=_TOOL_CHOICES[value])
    elif isinstance(value, dict) and value.get("type") == "function":
        name = value.get("name")
        if not isinstance(name, str) or not name:
            raise RequestError("tool_choice.name: required, a non-empty string")
        choice = ToolChoice(type="tool", name=name)
    elif isinstance(value, dict) and value.get("type") == "allowed_tools":
        choice = ToolChoice(type="any" if value.get("mode") == "required" else "auto")
    elif isinstance(value, dict):
        raise RequestError(f"tool_choice: type {value.get('type')!r} is not supported, only function tools")
    else:
        raise RequestError(f"tool_choice: expected auto, none, required or a function object; got {value!r}")
    if parallel is False:
        choice = choice or ToolChoice(type="auto")
        choice.disable_parallel_tool_use = True
    return choice


# --------------------------------------------------------------------------- input items


def _input(value: object) -> tuple[list[TextBlock], list[Message]]:
    """Input items -> (system prompt, messages). Leading system/developer messages make the system
    prompt, later ones stay in place (as the chat front). Consecutive assistant-side items (an
    assistant message, reasoning, function calls) join one assistant message and consecutive
    user-side items (a user message, function call outputs) one user message, as Anthropic
    expects and OpenAI chat needs (the tool calls of one turn in one message)."""
    if isinstance(value, str):
        if not value:
            raise RequestError("input: required, a non-empty string or array of input items")
        return [], [Message(role="user", content=[TextBlock(text=value)])]
    if not isinstance(value, list) or not value:
        raise RequestError("input: required, a non-empty string or array of input items")
    system: list[TextBlock] = []
    out: list[Message] = []
    for index, item in enumerate(value):
        role, blocks = _item(item, index)
        if role == "system":
            texts: list[ContentBlock] = [block for block in blocks if isinstance(block, TextBlock)]
            if out:
                out.append(Message(role="system", content=texts))
            else:
                system.extend(block for block in texts if isinstance(block, TextBlock))
        elif out and out[-1].role == role:
            out[-1].content.extend(blocks)
        elif blocks:
            out.append(Message(role=role, content=blocks))
    if not out:
        raise RequestError("input: holds no user or assistant content")
    return system, out


def _item(item: object, index: int) -> tuple[Literal["user", "assistant", "system"], list[ContentBlock]]:
    path = f"input[{index}]"
    if not isinstance(item, dict):
        raise RequestError(f"{path}: expected an object")
    kind = item.get("type", "message")
    if kind == "message":
        return _message(item, path)
    if kind == "function_call":
        call_id, name = item.get("call_id"), item.get("name")
        if not isinstance(call_id, str) or not call_id:
            raise RequestError(f"{path}.call_id: required, a non-empty string")
        if not isinstance(name, str) or not name:
            raise RequestError(f"{path}.name: required, a non-empty string")
        namespace = item.get("namespace")
        name = namespaced(namespace if isinstance(namespace, str) else None, name)
        return "assistant", [
            ToolUseBlock(id=call_id, name=name, input=parse_arguments(item.get("arguments")))
        ]
    if kind == "function_call_output":
        return "user", [_tool_result(item, path)]
    if kind == "reasoning":
        return "assistant", _reasoning_blocks(item)
    if kind == "item_reference":
        raise RequestError(f"{path}: item_reference is not supported: {_NO_STATE}")
    raise RequestError(
        f"{path}: input items of type {kind!r} are not supported by the gateway "
        "(message, function_call, function_call_output and reasoning are)"
    )


def _message(item: JSON, path: str) -> tuple[Literal["user", "assistant", "system"], list[ContentBlock]]:
    role = item.get("role")
    content = item.get("content")
    if role in ("system", "developer"):
        return "system", [b for b in _parts(content, path) if isinstance(b, TextBlock)]
    if role == "user":
        return "user", _parts(content, path)
    if role == "assistant":
        return "assistant", [b for b in _parts(content, path) if not isinstance(b, ImageBlock)]
    raise RequestError(f"{path}.role: expected one of {_ROLES}; got {role!r}")


def _parts(content: object, path: str) -> list[ContentBlock]:
    if isinstance(content, str):
        return [TextBlock(text=content)] if content else []
    if not isinstance(content, list):
        raise RequestError(f"{path}.content: expected a string or an array of content parts")
    blocks: list[ContentBlock] = []
    for number, part in enumerate(content):
        where = f"{path}.content[{number}]"
        if not isinstance(part, dict):
            raise RequestError(f"{where}: expected an object")
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text", "refusal"):
            text = part.get("refusal" if kind == "refusal" else "text")
            if not isinstance(text, str):
                raise RequestError(f"{where}.text: required, a string")
            if text:
                blocks.append(TextBlock(text=text))
        elif kind == "input_image":
            blocks.append(_image(part, where))
        else:  # input_file, input_audio...: kept for a same-format upstream, dropped by others
            blocks.append(OtherBlock(raw=part))
    return blocks


def _image(part: JSON, path: str) -> ImageBlock:
    url = part.get("image_url")
    if not isinstance(url, str) or not url:
        if part.get("file_id") is not None:
            raise RequestError(f"{path}: file_id images need OpenAI's file store; send an image_url")
        raise RequestError(f"{path}.image_url: required, a URL or a data: URL")
    if url.startswith("data:") and ";base64," in url:
        header, _, data = url.partition(";base64,")
        return ImageBlock(media_type=header[len("data:") :] or None, data=data)
    return ImageBlock(url=url)


def _tool_result(item: JSON, path: str) -> ToolResultBlock:
    call_id = item.get("call_id")
    if not isinstance(call_id, str) or not call_id:
        raise RequestError(f"{path}.call_id: required, a non-empty string")
    output = item.get("output")
    if output is None:
        raise RequestError(f"{path}.output: required, a string or an array of content parts")
    parts = _parts(output, f"{path}.output") if not isinstance(output, str) else [TextBlock(text=output)]
    content: list[ToolResultPart] = [part for part in parts if isinstance(part, TextBlock | ImageBlock)]
    return ToolResultBlock(tool_use_id=call_id, content=[p for p in content if not _empty(p)])


def _empty(part: ToolResultPart) -> bool:
    return isinstance(part, TextBlock) and not part.text


def _reasoning_blocks(item: JSON) -> list[ContentBlock]:
    """A reasoning item we gave out: its summary is the thinking, ``encrypted_content`` its
    signature (``reasoning_item``), so Anthropic can verify thinking sent back in a tool loop."""
    texts = [p.get("text") for p in item.get("content") or item.get("summary") or [] if isinstance(p, dict)]
    thinking = "".join(t for t in texts if isinstance(t, str))
    signature = item.get("encrypted_content")
    if not isinstance(signature, str) or not signature:
        if not thinking:
            return []
        return [ThinkingBlock(thinking=thinking, signature=None, origin=FORMAT)]
    return [ThinkingBlock(thinking=thinking, signature=signature, origin=thinking_origin(signature))]


# =========================================================================== response


def item_ids(response_id: str, index: int) -> tuple[str, str, str]:
    """The ids of the output items at ``index`` (message, function call, reasoning), derived from
    the response's id so that a stream and its final Response agree."""
    base = response_id.removeprefix(RESPONSE_ID_PREFIX)
    return f"msg_{base}_{index}", f"fc_{base}_{index}", f"rs_{base}_{index}"


def reasoning_item(item_id: str, block: ThinkingBlock, status: str = "completed") -> JSON:
    """A reasoning item for a thinking block: the thinking as its summary, the signature (or the
    ``ccr:<wire>`` mark of a foreign origin) as ``encrypted_content``."""
    signature = block.signature or f"ccr:{block.origin}"
    summary = [{"type": "summary_text", "text": block.thinking}] if block.thinking else []
    return {
        "type": "reasoning",
        "id": item_id,
        "summary": summary,
        "encrypted_content": signature,
        "status": status,
    }


def usage_to_responses(usage: Usage) -> JSON:
    """Responses usage: input_tokens count cached input too (as OpenAI's prompt tokens)."""
    cached = usage.cache_read_input_tokens
    total_input = usage.input_tokens + cached + usage.cache_creation_input_tokens
    return {
        "input_tokens": total_input,
        "input_tokens_details": {
            "cached_tokens": cached,
            "cache_write_tokens": usage.cache_creation_input_tokens,
        },
        "output_tokens": usage.output_tokens,
        # The canonical usage does not split reasoning out of the output tokens.
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": total_input + usage.output_tokens,
    }


def status_for(stop_reason: StopReason | None) -> str:
    return "incomplete" if stop_reason in ("max_tokens", "refusal") else "completed"


def incomplete_details(stop_reason: StopReason | None) -> JSON | None:
    if stop_reason == "max_tokens":
        return {"reason": "max_output_tokens"}
    if stop_reason == "refusal":
        return {"reason": "content_filter"}
    return None


def response_shell(request: MessagesRequest, response_id: str, created_at: int, status: str) -> JSON:
    """A Response object without output and usage: the request's parameters as the client sent
    them, as OpenAI echoes them."""
    received = request.received
    body: JSON = received.body if received is not None and received.format == FORMAT else {}
    reasoning = _object(body.get("reasoning"))
    text = _object(body.get("text"))
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": request.model if received is None else received.decoded.model,
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls") is not False,
        "previous_response_id": None,
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": False,
        "temperature": body.get("temperature"),
        "text": {**text, "format": {"type": "text"}},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p"),
        "truncation": "disabled",
        "usage": None,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def _object(value: object) -> JSON:
    return value if isinstance(value, dict) else {}


def _output(
    response: MessagesResponse, response_id: str, namespaces: dict[str, tuple[str, str]]
) -> list[JSON]:
    items: list[JSON] = []
    for index, block in enumerate(response.content):
        message_id, call_id, reasoning_id = item_ids(response_id, index)
        if isinstance(block, TextBlock):
            part = {"type": "output_text", "text": block.text, "annotations": [], "logprobs": []}
            items.append(
                {
                    "type": "message",
                    "id": message_id,
                    "status": "completed",
                    "role": "assistant",
                    "content": [part],
                }
            )
        elif isinstance(block, ToolUseBlock):
            arguments = orjson.dumps(block.input).decode()
            items.append(function_call_item(call_id, block, arguments, "completed", namespaces))
        elif isinstance(block, ThinkingBlock) and not block.redacted:
            items.append(reasoning_item(reasoning_id, block))
    return items


def encode_response(
    response: MessagesResponse, request: MessagesRequest, *, created_at: int | None = None
) -> bytes:
    """A Response object for a Responses client."""
    response_id = client_id(response.id, RESPONSE_ID_PREFIX)
    created = int(time.time()) if created_at is None else created_at
    body = response_shell(request, response_id, created, status_for(response.stop_reason))
    body["incomplete_details"] = incomplete_details(response.stop_reason)
    body["output"] = _output(response, response_id, tool_namespaces(request))
    body["usage"] = usage_to_responses(response.usage)
    return orjson.dumps(body)
