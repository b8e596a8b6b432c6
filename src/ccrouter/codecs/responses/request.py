"""Canonical request -> OpenAI Responses API request (``POST /v1/responses``), upstream direction.

Reference: https://platform.openai.com/docs/api-reference/responses/create. What maps how:

- the system prompt -> ``instructions``; each message -> ``input`` items: a ``message`` item with
  ``input_text`` / ``input_image`` / ``input_file`` parts for the user, ``output_text`` parts for the
  assistant; a ``tool_use`` -> a ``function_call`` item (``call_id``, ``name``, ``arguments`` as JSON
  text), a ``tool_result`` -> a ``function_call_output`` item right after the calls it answers. A
  system message inside the conversation is user text in place (``ccrouter.codecs.notes``).
- tools -> function tools with ``strict: false`` (the field is required; strict mode would refuse
  Claude Code's schemas with optional properties); ``tool_choice`` and ``parallel_tool_calls``.
- ``max_tokens`` -> ``max_output_tokens`` (at least 16, the API's minimum: Claude Code's model probe
  asks for 1); ``temperature`` / ``top_p`` for non-reasoning models only (reasoning models answer 400
  "Unsupported parameter"); ``thinking`` / ``effort`` -> ``reasoning: {effort, summary: "auto"}`` for
  reasoning models. The API has no stop sequences and no ``top_k``: both are dropped.

**Always the whole history, ``store: false``, never ``previous_response_id``.** The Responses API
can keep a conversation server-side and continue it from ``previous_response_id``; ccrouter does
not use that. It is a stateless gateway: the client (Claude Code) resends the whole conversation on
every turn, and the next turn may go to another provider (failover, routing rules) or to another
ccrouter instance behind a load balancer; none of them can know a response id that one upstream
account stored. Asking OpenAI to retain every prompt would also keep the user's code on OpenAI's
servers for no benefit. So each call carries its full ``input`` and asks for nothing to be stored.

Reasoning of earlier turns is not sent back: with ``store: false`` it could only travel as
``encrypted_content``, which only the OpenAI organisation that produced it can read, and the next
turn may fail over to another account. Thinking blocks are read from the reasoning summaries (see
``response``) and dropped here, as the chat codec drops foreign thinking.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from ccrouter.codecs.billing import without_billing_line
from ccrouter.codecs.notes import system_note
from ccrouter.codecs.openai.toolnames import ToolNames
from ccrouter.codecs.prompt import CleanTexts
from ccrouter.codecs.responses.wire import (
    FunctionTool,
    InputContent,
    InputItem,
    ReasoningConfig,
    ResponsesRequest,
    ToolChoice,
)
from ccrouter.codecs.toolsearch import callable_tools, reference_text
from ccrouter.messages import (
    ImageBlock,
    Message,
    MessagesRequest,
    OtherBlock,
    TextBlock,
    Tool,
    ToolResultBlock,
    ToolUseBlock,
)
from ccrouter.messages import ToolChoice as CanonicalToolChoice

__all__ = ["MIN_OUTPUT_TOKENS", "encode_request", "is_reasoning_model"]

# The API rejects a smaller max_output_tokens ("integer below minimum value").
MIN_OUTPUT_TOKENS = 16
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}
# OpenAI reasoning models (o1, o3, o4-mini, gpt-5*, codex-mini...): no temperature/top_p; the others
# reject ``reasoning``. gpt-5-chat-* is the non-reasoning variant. The same rule as the chat vendor
# profile (``ccrouter.builtins.vendors``), plus the codex models served on this API only.
_REASONING_MODEL = re.compile(r"^(o\d|gpt-5|codex)(?!.*-chat)")
_EFFORTS = {"low": "low", "minimal": "minimal", "medium": "medium"}


def is_reasoning_model(model: str) -> bool:
    """True for OpenAI's reasoning models (``openai/o3`` counts as ``o3``)."""
    return _REASONING_MODEL.match(model.rsplit("/", 1)[-1].lower()) is not None


def encode_request(
    request: MessagesRequest, model: str, *, stream: bool, clean: CleanTexts | None = None
) -> tuple[ResponsesRequest, ToolNames]:
    """The Responses request body for ``request``, and the tool name/id map to read the answer with.
    ``clean``: texts known to hold no Claude Code billing line (``ccrouter.codecs.billing``)."""
    request = without_billing_line(request, clean)
    names = ToolNames()
    body: ResponsesRequest = {"model": model, "input": _input(request.messages, names), "store": False}
    instructions = "\n\n".join(block.text for block in request.system if block.text)
    if instructions:
        body["instructions"] = instructions
    # No tool search here: deferred tools go as ordinary ones once loaded (``codecs.toolsearch``).
    tools = [_tool(tool, names) for tool in callable_tools(request.tools, request.messages)]
    if tools:
        body["tools"] = tools
        if request.tool_choice is not None:
            body["tool_choice"] = _tool_choice(request.tool_choice, names)
            if request.tool_choice.disable_parallel_tool_use:
                body["parallel_tool_calls"] = False
    body["max_output_tokens"] = max(request.max_tokens, MIN_OUTPUT_TOKENS)
    reasoning = is_reasoning_model(model)
    if reasoning:
        effort = _effort(request)
        if effort is not None:
            body["reasoning"] = effort
    else:
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
    if stream:
        body["stream"] = True
    return body, names


def _effort(request: MessagesRequest) -> ReasoningConfig | None:
    """``reasoning`` for the request's effort or thinking; summaries asked so thinking can be shown."""
    effort: Any
    if request.effort is not None:
        effort = _EFFORTS.get(request.effort, "high")
    elif not request.thinking.on:
        return None
    else:
        budget = request.thinking.budget_tokens
        if request.thinking.type != "enabled" or budget is None:
            effort = "medium"
        else:
            effort = "low" if budget < 4096 else "medium" if budget < 16384 else "high"
    return {"effort": effort, "summary": "auto"}


def _tool(tool: Tool, names: ToolNames) -> FunctionTool:
    schema = tool.input_schema or _EMPTY_SCHEMA
    if "type" not in schema:
        schema = {"type": "object", **schema}
    out: FunctionTool = {
        "type": "function",
        "name": names.to_wire_name(tool.name),
        "parameters": schema,
        "strict": False,
    }
    if tool.description:
        out["description"] = tool.description
    return out


def _tool_choice(choice: CanonicalToolChoice, names: ToolNames) -> ToolChoice:
    if choice.type == "tool" and choice.name:
        return {"type": "function", "name": names.to_wire_name(choice.name)}
    if choice.type == "any":
        return "required"
    return "none" if choice.type == "none" else "auto"


# --------------------------------------------------------------------------- input items


def _input(messages: list[Message], names: ToolNames) -> list[InputItem]:
    items: list[InputItem] = []
    pending: list[str] = []  # call ids of the last assistant turn still unanswered
    for message in messages:
        if message.role == "assistant":
            _answer_missing(pending, items)
            pending = _assistant(message, names, items)
        elif message.role == "user":
            _user(message, names, pending, items)
            pending = []
        else:
            notes: list[InputContent] = [
                {"type": "input_text", "text": system_note(block.text)}
                for block in message.content
                if isinstance(block, TextBlock) and block.text
            ]
            if notes:
                _answer_missing(pending, items)
                pending = []
                items.append({"type": "message", "role": "user", "content": notes})
    _answer_missing(pending, items)
    return items


def _assistant(message: Message, names: ToolNames, items: list[InputItem]) -> list[str]:
    """The items of an assistant turn; returns the call ids it leaves to be answered."""
    texts: list[InputContent] = []
    calls: list[str] = []
    for block in message.content:
        if isinstance(block, TextBlock) and block.text:
            texts.append({"type": "output_text", "text": block.text})
        elif isinstance(block, ToolUseBlock):
            if texts:  # keep the order of text and calls as the model produced them
                items.append({"type": "message", "role": "assistant", "content": texts})
                texts = []
            call_id = names.to_wire_id(block.id)
            calls.append(call_id)
            items.append(
                {
                    "type": "function_call",
                    "call_id": call_id,
                    "name": names.to_wire_name(block.name),
                    "arguments": orjson.dumps(block.input).decode(),
                }
            )
        # Thinking is not sent back (module docstring); server tool blocks have no equivalent here.
    if texts:
        items.append({"type": "message", "role": "assistant", "content": texts})
    return calls


def _user(message: Message, names: ToolNames, pending: list[str], items: list[InputItem]) -> None:
    """Function call outputs first, in the order of the calls, then the rest of the user turn."""
    results: dict[str, ToolResultBlock] = {}
    parts: list[InputContent] = []
    for block in message.content:
        if isinstance(block, ToolResultBlock):
            results.setdefault(names.to_wire_id(block.tool_use_id), block)
        else:
            part = _user_part(block)
            if part is not None:
                parts.append(part)
    media: list[InputContent] = []
    for call_id in pending:
        result = results.pop(call_id, None)
        output = "(no result)" if result is None else _result_text(result, media)
        items.append({"type": "function_call_output", "call_id": call_id, "output": output})
    # A result whose call is not in the turn before would be refused ("No tool call found").
    orphans: list[InputContent] = [
        {"type": "input_text", "text": f"[tool result {call_id}]\n{_result_text(result, media)}"}
        for call_id, result in results.items()
    ]
    content = media + orphans + parts
    if content:
        items.append({"type": "message", "role": "user", "content": content})


def _answer_missing(pending: list[str], items: list[InputItem]) -> None:
    """Calls left without a result (a trimmed history): the API refuses the request otherwise."""
    for call_id in pending:
        items.append({"type": "function_call_output", "call_id": call_id, "output": "(no result)"})
    pending.clear()


def _user_part(block: object) -> InputContent | None:
    if isinstance(block, TextBlock):
        return {"type": "input_text", "text": block.text} if block.text else None
    if isinstance(block, ImageBlock):
        return _image(block)
    if isinstance(block, OtherBlock):
        return _document(block.raw)
    return None


def _image(block: ImageBlock) -> InputContent | None:
    url = f"data:{block.media_type or 'image/png'};base64,{block.data}" if block.data else block.url
    return {"type": "input_image", "image_url": url, "detail": "auto"} if url else None


def _document(raw: dict[str, Any]) -> InputContent | None:
    """An Anthropic base64 PDF ``document`` as an ``input_file``; other unknown blocks are dropped."""
    source = raw.get("source")
    if raw.get("type") != "document" or not isinstance(source, dict):
        return None
    if source.get("type") == "base64" and isinstance(source.get("data"), str):
        media_type = source.get("media_type") or "application/pdf"
        title = raw.get("title")
        filename = title if isinstance(title, str) and title else "document.pdf"
        return {
            "type": "input_file",
            "filename": filename,
            "file_data": f"data:{media_type};base64,{source['data']}",
        }
    if source.get("type") == "text" and isinstance(source.get("data"), str):
        return {"type": "input_text", "text": source["data"]}
    return None


def _result_text(block: ToolResultBlock, media: list[InputContent]) -> str:
    """The text of a tool result; its images join the user message that follows the outputs."""
    texts: list[str] = []
    for item in block.content:
        if isinstance(item, TextBlock):
            texts.append(item.text)
        elif isinstance(item, ImageBlock):
            image = _image(item)
            if image is not None:
                media.append(image)
    loaded = reference_text(block.content)
    if loaded is not None:
        texts.insert(0, loaded)
    text = "\n".join(texts)
    if block.is_error:
        text = f"Error: {text}" if text else "Error"
    return text
