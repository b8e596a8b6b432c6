"""OpenAI chat-completions <-> canonical, both ways, non-streamed (streams: ``stream``).

Upstream side (we call an OpenAI-compatible provider): ``encode_request`` and ``decode_response``,
shaped per vendor by a ``Dialect``. Front side (an OpenAI SDK client calls us): ``decode_request``,
``encode_response`` and ``error_body``. Reference: https://platform.openai.com/docs/api-reference/chat

The system prompt is the first message; a ``system`` message inside the conversation is sent as a
``user`` message in its place (``ccrouter.codecs.notes`` says why), so a tool turn still ends with the
tool result and what came with it, never with a system turn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ccrouter.codecs.billing import without_billing_line
from ccrouter.codecs.notes import system_note
from ccrouter.codecs.openai.dialect import JSON, Dialect, Pending
from ccrouter.codecs.openai.front import (
    THINKING_SIGNATURE,
    decode_request,
    encode_response,
    error_body,
    finish_reason_for,
    usage_to_openai,
)
from ccrouter.codecs.openai.toolnames import ToolNames, WireNames, clean_schema, parse_arguments
from ccrouter.codecs.toolsearch import callable_tools, reference_text
from ccrouter.errors import UpstreamProtocolError, upstream_error_for_status
from ccrouter.messages import (
    ContentBlock,
    ImageBlock,
    Message,
    MessagesRequest,
    MessagesResponse,
    Received,
    StopReason,
    TextBlock,
    ThinkingBlock,
    Tool,
    ToolChoice,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)

if TYPE_CHECKING:
    from ccrouter.codecs.openai.memo import EncodeMemo

__all__ = [
    "THINKING_SIGNATURE",
    "Dialect",
    "clean_schema",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
    "error_body",
    "error_status",
    "finish_reason_for",
    "matched_stop",
    "split_think",
    "stop_reason_for",
    "usage_from_openai",
    "usage_to_openai",
]

_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"
_EMPTY_SCHEMA: JSON = {"type": "object", "properties": {}}
# OpenAI accepts at most 4 stop sequences.
_MAX_STOP = 4
_MAX_USER = 64


# =========================================================================== upstream: request


def encode_request(
    request: MessagesRequest,
    model: str,
    *,
    stream: bool,
    dialect: Dialect,
    memo: EncodeMemo | None = None,
) -> tuple[JSON, ToolNames]:
    """The chat-completions body for ``request``, and the tool name/id map to read the answer.

    With a ``memo``, when the request's parts are shared with earlier requests (``shared_parts``),
    the system prompt, history messages and tools may be ``orjson.Fragment``s: the body is then only
    for ``orjson.dumps`` (default options), which gives the bytes it gives without the memo.
    """
    names = ToolNames()
    # Claude Code's billing line would only defeat the provider's prefix cache (``codecs.billing``).
    request = without_billing_line(request, memo.clean if memo is not None else None)
    received = request.received
    if received is not None and received.format == "openai":
        return _passthrough(request, received, model, stream, dialect, names), names
    tools: list[JSON] | orjson.Fragment | None
    # No tool search here: deferred tools go as ordinary ones once loaded (``codecs.toolsearch``).
    # The memo keys a tool list by its tools, so a list that grows between turns is encoded anew.
    offered = callable_tools(request.tools, request.messages)
    if memo is not None and request.shared_parts:
        dialect = memo.intern(dialect)
        body: JSON = {"model": model, "messages": _memo_messages(request, names, dialect, memo)}
        tools = memo.tools(offered, names, dialect, _tools)
    else:
        body = {"model": model, "messages": _messages(request, names, dialect)}
        tools = _tools(offered, names, dialect)
    _put_tools(body, tools, request.tool_choice, names)
    _set_reasoning(body, request, dialect)
    if not dialect.drop_sampling:
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
    if request.stop_sequences and not dialect.drop_stop:
        body["stop"] = request.stop_sequences[:_MAX_STOP]
    body[dialect.max_tokens_field] = _max_tokens(request.max_tokens, dialect)
    if stream:
        body["stream"] = True
        if dialect.stream_usage:
            body["stream_options"] = {"include_usage": True}
    _put_user(body, request)
    return body, names


def _put_tools(
    body: JSON, tools: list[JSON] | orjson.Fragment | None, choice: ToolChoice | None, names: ToolNames
) -> None:
    if tools:
        body["tools"] = tools
        if choice is not None:
            body["tool_choice"] = _tool_choice(choice, names)
            if choice.disable_parallel_tool_use:
                body["parallel_tool_calls"] = False


def _put_user(body: JSON, request: MessagesRequest) -> None:
    user = request.metadata.get("user_id")
    # Claude Code's user_id is a JSON document (device and session ids), useless as ``user``.
    if isinstance(user, str) and user and not user.startswith("{"):
        body["user"] = user[:_MAX_USER]


def _passthrough(
    request: MessagesRequest, received: Received, model: str, stream: bool, dialect: Dialect, names: ToolNames
) -> JSON:
    """The client's own OpenAI body, with the fields dispatch owns, the vendor's hard limits, and the
    fields whose canonical value changed since decoding encoded again (``messages.Received``)."""
    body = dict(received.body)
    _put_changed(body, request, received.decoded, dialect, names)
    body["model"] = model
    body.pop("max_tokens", None)
    body.pop("max_completion_tokens", None)
    body[dialect.max_tokens_field] = _max_tokens(request.max_tokens, dialect)
    if stream:
        body["stream"] = True
        if dialect.stream_usage:
            options = body.get("stream_options")
            body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    else:
        body.pop("stream", None)
        body.pop("stream_options", None)  # OpenAI rejects stream_options without stream
    if dialect.drop_sampling:
        body.pop("temperature", None)
        body.pop("top_p", None)
    if dialect.drop_stop:
        body.pop("stop", None)
    body.pop("reasoning_effort", None)
    _set_reasoning(body, request, dialect)
    tools = body.get("tools")
    if dialect.strip_schema_keys and isinstance(tools, list):
        body["tools"] = [_clean_tool(tool, dialect.strip_schema_keys) for tool in tools]
    return body


def _put_changed(
    body: JSON, request: MessagesRequest, decoded: MessagesRequest, dialect: Dialect, names: ToolNames
) -> None:
    """Encode again the fields edited since decoding. The conversation is one unit: the client's
    messages do not map one to one to canonical ones (tool results join user messages)."""
    if request.system is not decoded.system or request.messages is not decoded.messages:
        body["messages"] = _messages(request, names, dialect)
    if request.tools is not decoded.tools or request.tool_choice != decoded.tool_choice:
        for key in ("tools", "tool_choice", "parallel_tool_calls"):
            body.pop(key, None)
        _put_tools(body, _tools(request.tools, names, dialect), request.tool_choice, names)
    for key in ("temperature", "top_p"):
        value = getattr(request, key)
        if value != getattr(decoded, key):
            if value is None:
                body.pop(key, None)
            else:
                body[key] = value
    if request.stop_sequences != decoded.stop_sequences:
        body.pop("stop", None)
        if request.stop_sequences:
            body["stop"] = request.stop_sequences[:_MAX_STOP]
    if request.metadata is not decoded.metadata:
        body.pop("user", None)
        _put_user(body, request)


def _max_tokens(value: int, dialect: Dialect) -> int:
    return min(value, dialect.max_tokens_cap) if dialect.max_tokens_cap else value


def _effort(request: MessagesRequest) -> str | None:
    """reasoning_effort for the request's thinking/effort: low, medium or high."""
    if request.effort is not None:
        return {"low": "low", "minimal": "low", "medium": "medium"}.get(request.effort, "high")
    thinking = request.thinking
    if not thinking.on:
        return None
    budget = thinking.budget_tokens
    if thinking.type != "enabled" or budget is None:
        return "medium"
    return "low" if budget < 4096 else "medium" if budget < 16384 else "high"


def _set_reasoning(body: JSON, request: MessagesRequest, dialect: Dialect) -> None:
    effort = _effort(request)
    if effort is None or dialect.reasoning_style == "none":
        return
    if dialect.reasoning_style == "openrouter":
        body["reasoning"] = {"effort": effort}
    else:
        body["reasoning_effort"] = effort


def _tools(tools: list[Tool], names: WireNames, dialect: Dialect) -> list[JSON]:
    return [_tool(tool, names, dialect) for tool in tools if tool.server_type is None]


def _tool(tool: Tool, names: WireNames, dialect: Dialect) -> JSON:
    schema = tool.input_schema or _EMPTY_SCHEMA
    if "type" not in schema:
        schema = {"type": "object", **schema}
    if dialect.strip_schema_keys:
        schema = clean_schema(schema, dialect.strip_schema_keys)
    function: JSON = {"name": names.to_wire_name(tool.name)}
    if tool.description:
        function["description"] = tool.description
    function["parameters"] = schema
    return {"type": "function", "function": function}


def _clean_tool(tool: Any, keys: frozenset[str]) -> Any:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("parameters"), dict):
        return tool
    cleaned = clean_schema(function["parameters"], keys)
    if cleaned is function["parameters"]:
        return tool
    return {**tool, "function": {**function, "parameters": cleaned}}


def _tool_choice(choice: ToolChoice, names: ToolNames) -> Any:
    if choice.type == "tool" and choice.name:
        return {"type": "function", "function": {"name": names.to_wire_name(choice.name)}}
    return {"any": "required", "none": "none"}.get(choice.type, "auto")


# --------------------------------------------------------------------------- messages


def _messages(request: MessagesRequest, names: ToolNames, dialect: Dialect) -> list[JSON]:
    out: list[JSON] = []
    system = _system_message(request.system, dialect)
    if system is not None:
        out.append(system)
    pending: Pending = ()
    for message in request.messages:
        pending = _message(message, pending, names, dialect, out)
    _answer_missing(pending, out)
    return out


def _memo_messages(
    request: MessagesRequest, names: ToolNames, dialect: Dialect, memo: EncodeMemo
) -> list[JSON | orjson.Fragment]:
    """``_messages``, with the system prompt and the history from ``memo``, serialised."""
    out: list[JSON | orjson.Fragment] = []
    system = memo.system(request.system, dialect, _system_message)
    if system is not None:
        out.append(system)
    # The history up to the new message: the run remembered from an earlier turn, then the rest
    # message by message; then the whole of it is remembered for the next turn.
    history = request.messages[:-1]
    done, parts, calls, pending, weight = memo.history(history, names, dialect)
    out.extend(parts)
    if done < len(history):
        collected, made = list(parts), list(calls)
        for message in history[done:]:
            more, pending, their_calls, their_weight = memo.message(
                message, pending, names, dialect, _message
            )
            collected.extend(more)
            made.extend(their_calls)
            weight += their_weight
        out.extend(collected[len(parts) :])
        memo.remember_history(history, dialect, tuple(collected), tuple(made), pending, weight)
    # The last message is decoded anew for every request (``anthropic.body``): never shared.
    tail: list[JSON] = []
    for message in request.messages[-1:]:
        pending = _message(message, pending, names, dialect, tail)
    _answer_missing(pending, tail)
    out.extend(tail)
    return out


def _message(
    message: Message, pending: Pending, names: WireNames, dialect: Dialect, out: list[JSON]
) -> Pending:
    """Appends the OpenAI messages for ``message`` to ``out``; returns the calls it leaves pending.

    What it appends depends only on its arguments and on what ``names`` answers (``EncodeMemo``
    relies on it)."""
    if message.role == "user":
        _user_messages(message, pending, names, dialect, out)
        return ()
    _answer_missing(pending, out)
    if message.role == "assistant":
        assistant = _assistant_message(message, names, dialect)
        if assistant is None:
            return ()
        out.append(assistant)
        return tuple(call["id"] for call in assistant.get("tool_calls", ()))
    # A system message inside the conversation: user text, in place (``ccrouter.codecs.notes``).
    parts = [
        _text_part(system_note(block.text), block.cache_control, dialect)
        for block in message.content
        if isinstance(block, TextBlock) and block.text
    ]
    if parts:
        out.append({"role": "user", "content": _content(parts)})
    return ()


def _system_message(blocks: list[TextBlock], dialect: Dialect) -> JSON | None:
    parts = [_text_part(block.text, block.cache_control, dialect) for block in blocks if block.text]
    return {"role": "system", "content": _content(parts)} if parts else None


def _text_part(text: str, cache_control: JSON | None, dialect: Dialect) -> JSON:
    if cache_control is not None and dialect.keep_cache_control:
        return {"type": "text", "text": text, "cache_control": cache_control}
    return {"type": "text", "text": text}


def _image_part(block: ImageBlock) -> JSON:
    url = block.url if block.data is None else f"data:{block.media_type or 'image/png'};base64,{block.data}"
    return {"type": "image_url", "image_url": {"url": url}}


def _content(parts: list[JSON]) -> str | list[JSON]:
    """A plain string when the parts are plain text (accepted by every OpenAI-compatible server)."""
    if all(part["type"] == "text" and len(part) == 2 for part in parts):
        return "\n\n".join(part["text"] for part in parts)
    return parts


def _assistant_message(message: Message, names: WireNames, dialect: Dialect) -> JSON | None:
    parts: list[JSON] = []
    calls: list[JSON] = []
    thinking: list[str] = []
    for block in message.content:
        if isinstance(block, TextBlock):
            if block.text:
                parts.append(_text_part(block.text, block.cache_control, dialect))
        elif isinstance(block, ToolUseBlock):
            arguments = orjson.dumps(block.input).decode()
            calls.append(
                {
                    "id": names.to_wire_id(block.id),
                    "type": "function",
                    "function": {"name": names.to_wire_name(block.name), "arguments": arguments},
                }
            )
        elif isinstance(block, ThinkingBlock) and not block.redacted and block.thinking:
            thinking.append(block.thinking)
    if not parts and not calls:
        return None
    out: JSON = {"role": "assistant", "content": _content(parts) if parts else None}
    if calls:
        out["tool_calls"] = calls
    if dialect.echo_reasoning_content:
        # Empty when we have none: DeepSeek checks that the field is present on tool-call turns.
        out["reasoning_content"] = "".join(thinking)
    return out


def _user_messages(
    message: Message, pending: Pending, names: WireNames, dialect: Dialect, out: list[JSON]
) -> None:
    """Tool results first, as ``tool`` messages in the order of the calls (OpenAI requires one per call
    right after the assistant message), then the rest of the user content."""
    results: dict[str, ToolResultBlock] = {}
    parts: list[JSON] = []
    for block in message.content:
        if isinstance(block, ToolResultBlock):
            results.setdefault(names.to_wire_id(block.tool_use_id), block)
        elif isinstance(block, TextBlock):
            if block.text:
                parts.append(_text_part(block.text, block.cache_control, dialect))
        elif isinstance(block, ImageBlock):
            parts.append(_image_part(block))
    images: list[JSON] = []
    for wire_id in pending:
        out.append(_tool_message(wire_id, results.pop(wire_id, None), dialect, images))
    # Results whose call is not in the previous message would be rejected as tool messages.
    orphans = [
        _text_part(f"[tool result {wire_id}]\n{_result_text(block, images)}", None, dialect)
        for wire_id, block in results.items()
    ]
    parts = images + orphans + parts
    if parts:
        out.append({"role": "user", "content": _content(parts)})


def _result_text(block: ToolResultBlock, images: list[JSON]) -> str:
    texts = []
    for item in block.content:
        if isinstance(item, TextBlock):
            texts.append(item.text)
        elif isinstance(item, ImageBlock):
            images.append(_image_part(item))
    loaded = reference_text(block.content)
    if loaded is not None:
        texts.insert(0, loaded)
    text = "\n".join(texts)
    if block.is_error:
        text = f"Error: {text}" if text else "Error"
    return text


def _tool_message(wire_id: str, block: ToolResultBlock | None, dialect: Dialect, images: list[JSON]) -> JSON:
    if block is None:
        return {"role": "tool", "tool_call_id": wire_id, "content": "(no result)"}
    text = _result_text(block, images)
    cache_control = block.cache_control
    if cache_control is None and block.content and isinstance(block.content[-1], TextBlock):
        cache_control = block.content[-1].cache_control
    part = _text_part(text, cache_control, dialect)
    return {"role": "tool", "tool_call_id": wire_id, "content": _content([part])}


def _answer_missing(pending: Pending, out: list[JSON]) -> None:
    """Calls left without a result (a trimmed history): OpenAI rejects the request otherwise."""
    for wire_id in pending:
        out.append({"role": "tool", "tool_call_id": wire_id, "content": "(no result)"})


# =========================================================================== upstream: response


def decode_response(
    body: bytes, names: ToolNames, dialect: Dialect, *, provider: str = ""
) -> MessagesResponse:
    """A canonical response from a chat.completion body."""
    data = _load_object(body, provider)
    choices = data.get("choices")
    if data.get("error") and not choices:
        # OpenRouter answers some failures with status 200 and an error body.
        error = data["error"]
        message = _named(provider, _error_text(error))
        raise upstream_error_for_status(error_status(error), message, provider=provider)
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise UpstreamProtocolError(_named(provider, "response has no choices"), provider=provider)
    choice = choices[0]
    body_message = choice.get("message")
    content, refused = _message_content(body_message if isinstance(body_message, dict) else {}, names)
    stop_reason, stop_sequence = stop_reason_for(
        choice.get("finish_reason"),
        tool_use=any(isinstance(block, ToolUseBlock) for block in content),
        matched_stop=matched_stop(choice),
        refused=refused,
    )
    return MessagesResponse(
        id=str(data.get("id") or names.fresh_id("msg")),
        model=str(data.get("model") or ""),
        content=content,
        stop_reason=stop_reason,
        stop_sequence=stop_sequence,
        usage=usage_from_openai(data.get("usage")),
        raw_body=body,
        raw_format="openai",
    )


def _message_content(message: JSON, names: ToolNames) -> tuple[list[ContentBlock], bool]:
    """Blocks of a response message (thinking first), and whether it is a refusal."""
    content: list[ContentBlock] = []
    text = message.get("content")
    if isinstance(text, list):  # some servers answer with content parts
        text = "".join(p["text"] for p in text if isinstance(p, dict) and isinstance(p.get("text"), str))
    tagged, text = split_think(text) if isinstance(text, str) else ("", "")
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    thinking = reasoning if isinstance(reasoning, str) and reasoning else tagged
    if thinking:
        content.append(ThinkingBlock(thinking=thinking, signature=THINKING_SIGNATURE, origin="openai"))
    if text:
        content.append(TextBlock(text=text))
    refusal = message.get("refusal")
    refused = isinstance(refusal, str) and refusal != ""
    if refused:
        content.append(TextBlock(text=str(refusal)))
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str) and function["name"]:
            content.append(
                ToolUseBlock(
                    id=names.from_wire_id(call.get("id")),
                    name=names.from_wire_name(function["name"]),
                    input=parse_arguments(function.get("arguments")),
                )
            )
    return content, refused


def _load_object(body: bytes, provider: str) -> JSON:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        message = _named(provider, f"response is not JSON ({exc})")
        raise UpstreamProtocolError(message, provider=provider) from exc
    if not isinstance(data, dict):
        raise UpstreamProtocolError(_named(provider, "response is not a JSON object"), provider=provider)
    return data


def _named(provider: str, message: str) -> str:
    return f"{provider}: {message}" if provider else message


def split_think(content: str) -> tuple[str, str]:
    """``(thinking, text)`` from content that starts with a ``<think>...</think>`` section (models
    served without a reasoning parser: DeepSeek-R1 distills, Qwen3 on Groq/Ollama/vLLM)."""
    stripped = content.lstrip()
    if not stripped.startswith(_THINK_OPEN):
        return "", content
    inner = stripped[len(_THINK_OPEN) :]
    end = inner.find(_THINK_CLOSE)
    if end < 0:  # cut off while thinking (max_tokens)
        return inner.strip(), ""
    return inner[:end].strip(), inner[end + len(_THINK_CLOSE) :].lstrip()


def matched_stop(choice: JSON) -> str | None:
    """The stop sequence that ended the text, when the server says (vLLM ``stop_reason``, SGLang
    ``matched_stop``; OpenAI itself does not report it)."""
    for key in ("stop_reason", "matched_stop"):
        value = choice.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def stop_reason_for(
    finish_reason: object, *, tool_use: bool, matched_stop: str | None, refused: bool = False
) -> tuple[StopReason, str | None]:
    """Anthropic stop reason (and stop sequence) for an OpenAI finish_reason.

    ``length`` wins over tool calls: the arguments of a cut-off call are incomplete, and Anthropic
    reports ``max_tokens`` in that case too. Tool calls win over ``stop`` (Ollama says "stop").
    """
    if finish_reason == "length":
        return "max_tokens", None
    if tool_use:
        return "tool_use", None
    if finish_reason == "content_filter" or refused:
        return "refusal", None
    if matched_stop is not None and finish_reason in ("stop", None):
        return "stop_sequence", matched_stop
    return "end_turn", None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_from_openai(usage: object) -> Usage:
    """Anthropic-style usage: ``input_tokens`` excludes cached input (OpenAI's prompt_tokens include it)."""
    if not isinstance(usage, dict):
        return Usage()
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    # DeepSeek reports cache hits as prompt_cache_hit_tokens; OpenRouter reports writes.
    cached = _int(details.get("cached_tokens")) or _int(usage.get("prompt_cache_hit_tokens"))
    written = _int(details.get("cache_write_tokens"))
    return Usage(
        input_tokens=max(0, _int(usage.get("prompt_tokens")) - cached - written),
        output_tokens=_int(usage.get("completion_tokens")),
        cache_read_input_tokens=cached,
        cache_creation_input_tokens=written,
    )


_ERROR_STATUS = {
    "invalid_request_error": 400,
    "context_length_exceeded": 400,
    "authentication_error": 401,
    "invalid_api_key": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "model_not_found": 404,
    "rate_limit_exceeded": 429,
    "rate_limit_error": 429,
    "insufficient_quota": 429,
    "overloaded_error": 529,
    "service_unavailable": 503,
}


def error_status(error: object) -> int:
    """The HTTP status an OpenAI error object stands for (OpenRouter puts it in ``code``)."""
    if not isinstance(error, dict):
        return 500
    code = error.get("code")
    if isinstance(code, int) and 400 <= code <= 599:
        return code
    for key in ("code", "type"):
        status = _ERROR_STATUS.get(str(error.get(key)))
        if status is not None:
            return status
    return 500


def _error_text(error: object) -> str:
    if isinstance(error, dict):
        message = error.get("message")
        return message if isinstance(message, str) and message else str(error.get("type") or "error")
    return str(error)
