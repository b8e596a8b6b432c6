"""Amazon Bedrock Converse codec, upstream direction: canonical request -> Converse request body, and
Converse response -> canonical (the stream lives in ``converse.stream``).

Wire reference: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html.
What does not map one to one:

- No system role inside ``messages``: a ``system`` message becomes user text marked as a system note
  (``ccrouter.codecs.notes``); turns of one role in a row are merged (Converse wants them alternating).
- ``cache_control`` on a block becomes a ``cachePoint`` block after it (models with prompt caching).
- Thinking goes back only when a Converse model produced it (``ccr:converse:<signature>``); a
  ``tool_reference`` is told as text (no tool search), images given by URL as a note (Converse
  takes only bytes), server tools and unknown blocks are left out.
- ``top_k`` and the thinking budget are model-specific (``additionalModelRequestFields``): not sent.
"""

from __future__ import annotations

from typing import Any, cast

import orjson

from ccrouter.codecs.billing import without_billing_line
from ccrouter.codecs.converse.stream import (
    SIGNATURE_PREFIX,
    decode_usage,
    response_id,
    stop_reason,
    thinking_block,
)
from ccrouter.codecs.notes import system_note
from ccrouter.codecs.prompt import CleanTexts
from ccrouter.codecs.toolsearch import callable_tools, reference_text
from ccrouter.errors import UpstreamProtocolError
from ccrouter.messages import (
    ContentBlock,
    ImageBlock,
    Message,
    MessagesRequest,
    MessagesResponse,
    TextBlock,
    ThinkingBlock,
    Tool,
    ToolChoice,
    ToolResultBlock,
    ToolUseBlock,
)

__all__ = ["decode_response", "encode_request"]

JSON = dict[str, Any]
_CACHE_POINT: JSON = {"cachePoint": {"type": "default"}}
_IMAGE_FORMATS = frozenset({"png", "jpeg", "gif", "webp"})


def encode_request(request: MessagesRequest, clean: CleanTexts | None = None) -> JSON:
    """The Converse body for ``request`` (the model is named by the URL)."""
    request = without_billing_line(request, clean)
    body: JSON = {"messages": _messages(request.messages)}
    system = _system(request.system)
    if system:
        body["system"] = system
    config: JSON = {"maxTokens": request.max_tokens}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.stop_sequences:
        config["stopSequences"] = list(request.stop_sequences)
    body["inferenceConfig"] = config
    tools = _tools(callable_tools(request.tools, request.messages))
    if tools:
        body["toolConfig"] = {"tools": tools}
        choice = _tool_choice(request.tool_choice)
        if choice is not None:
            body["toolConfig"]["toolChoice"] = choice
    return body


def decode_response(body: bytes, *, model: str, provider: str = "bedrock") -> MessagesResponse:
    """A Converse response body -> canonical response."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UpstreamProtocolError(f"{provider}: response is not JSON ({exc})", provider=provider) from exc
    if not isinstance(data, dict):
        raise UpstreamProtocolError(f"{provider}: response is not a JSON object", provider=provider)
    output = data.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    if not isinstance(message, dict):
        raise UpstreamProtocolError(f"{provider}: response without output.message", provider=provider)
    content: list[ContentBlock] = []
    raw_blocks = message.get("content")
    for raw in raw_blocks if isinstance(raw_blocks, list) else []:
        block = _response_block(raw)
        if block is not None:
            content.append(block)
    has_tools = any(isinstance(block, ToolUseBlock) for block in content)
    return MessagesResponse(
        id=response_id(),
        model=model,
        content=content,
        stop_reason=stop_reason(data.get("stopReason"), has_tools),
        usage=decode_usage(data.get("usage")),
    )


# --------------------------------------------------------------------------- request parts


def _messages(messages: list[Message]) -> list[JSON]:
    out: list[JSON] = []
    for message in messages:
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return out


def _blocks(message: Message) -> list[JSON]:
    out: list[JSON] = []
    for block in message.content:
        encoded = _block(block, system=message.role == "system")
        if encoded is None:
            continue
        out.append(encoded)
        if getattr(block, "cache_control", None):
            out.append(_CACHE_POINT)
    return out


def _block(block: ContentBlock, *, system: bool) -> JSON | None:
    if type(block) is TextBlock:
        if not block.text:
            return None  # Converse rejects blank text blocks
        return {"text": system_note(block.text) if system else block.text}
    if type(block) is ImageBlock:
        return _image(block)
    if type(block) is ToolUseBlock:
        return {"toolUse": {"toolUseId": block.id, "name": block.name, "input": block.input}}
    if type(block) is ToolResultBlock:
        return {"toolResult": _tool_result(block)}
    if type(block) is ThinkingBlock:
        return _reasoning(block)
    return None  # OtherBlock: server tool results, documents... have no Converse form here


def _image(block: ImageBlock) -> JSON:
    media = (block.media_type or "").removeprefix("image/")
    if block.data is None or media not in _IMAGE_FORMATS:
        return {"text": f"[image not sent: {block.url or block.media_type or 'unknown source'}]"}
    return {"image": {"format": media, "source": {"bytes": block.data}}}


def _tool_result(block: ToolResultBlock) -> JSON:
    parts: list[JSON] = []
    for part in block.content:
        if type(part) is TextBlock and part.text:
            parts.append({"text": part.text})
        elif type(part) is ImageBlock:
            parts.append(_image(part))
    references = reference_text(block.content)
    if references is not None:
        parts.append({"text": references})
    result: JSON = {"toolUseId": block.tool_use_id, "content": parts or [{"text": ""}]}
    if block.is_error:
        result["status"] = "error"
    return result


def _reasoning(block: ThinkingBlock) -> JSON | None:
    if block.origin != "converse":
        return None  # another wire's reasoning: nothing a Converse model can verify
    signature = (block.signature or "").removeprefix(SIGNATURE_PREFIX)
    if block.redacted:
        return {"reasoningContent": {"redactedContent": block.data or ""}}
    text: JSON = {"text": block.thinking}
    if signature:
        text["signature"] = signature
    return {"reasoningContent": {"reasoningText": text}}


def _system(system: list[TextBlock]) -> list[JSON]:
    out: list[JSON] = []
    for block in system:
        if block.text:
            out.append({"text": block.text})
            if block.cache_control:
                out.append(_CACHE_POINT)
    return out


def _tools(tools: list[Tool]) -> list[JSON]:
    out: list[JSON] = []
    for tool in tools:
        if tool.server_type is not None:
            continue  # Anthropic's server tools (web search...) run on Anthropic's side only
        spec: JSON = {"name": tool.name, "inputSchema": {"json": tool.input_schema or {"type": "object"}}}
        if tool.description:
            spec["description"] = tool.description
        out.append({"toolSpec": spec})
        if tool.cache_control:
            out.append(_CACHE_POINT)
    return out


def _tool_choice(choice: ToolChoice | None) -> JSON | None:
    if choice is None or choice.type in ("auto", "none"):
        # Converse has no "none"; the tools stay (a history with tool use needs toolConfig).
        return None
    if choice.type == "tool" and choice.name:
        return {"tool": {"name": choice.name}}
    return {"any": {}}


# --------------------------------------------------------------------------- response parts


def _response_block(raw: Any) -> ContentBlock | None:
    if not isinstance(raw, dict):
        return None
    if isinstance(raw.get("text"), str):
        return TextBlock(text=raw["text"])
    tool = raw.get("toolUse")
    if isinstance(tool, dict):
        tool_input = tool.get("input")
        return ToolUseBlock(
            id=str(tool.get("toolUseId") or ""),
            name=str(tool.get("name") or ""),
            input=cast("dict[str, Any]", tool_input) if isinstance(tool_input, dict) else {},
        )
    reasoning = raw.get("reasoningContent")
    if isinstance(reasoning, dict):
        return thinking_block(reasoning)
    return None  # citations, guard content...: no canonical form
