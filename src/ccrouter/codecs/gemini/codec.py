"""Gemini ``generateContent`` codec, upstream direction: canonical request -> Gemini request body, and
Gemini response -> canonical (streaming and the response fold live in ``gemini.stream``, JSON Schema
cleaning in ``gemini.schema``).

Wire reference: https://ai.google.dev/api/generate-content. What does not map one to one:

- Gemini has no system role inside ``contents``: a ``system`` message becomes user text marked as a
  system note (``ccrouter.codecs.notes``) in the user turn before it, or after a model turn in the
  next user turn; the top-level system blocks become ``systemInstruction`` (without Claude Code's
  per-request billing line, ``ccrouter.codecs.billing``, which would only defeat Gemini's implicit
  prefix caching).
- Function responses are matched to calls by name, so a ``tool_result`` takes its name from the
  ``tool_use`` it answers, and the responses of one user turn follow the order of the calls.
- Gemini function names allow ``[A-Za-z_][A-Za-z0-9_.-]{0,63}``; other names are rewritten and
  ``GeminiContext.tool_names`` maps them back.
- Thinking is only sent back as a thought signature (``ccr:gemini:<sig>``, see ``gemini.stream``),
  attached to the next part of the same model turn: Gemini 3 rejects function calls without it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import urlsplit

import orjson

from ccrouter.codecs.billing import without_billing_line
from ccrouter.codecs.gemini.schema import clean_parameters, clean_schema
from ccrouter.codecs.gemini.stream import (
    GENERATED_ID_PREFIX,
    SIGNATURE_PREFIX,
    GeminiContext,
    GeminiStreamDecoder,
    response_from_chunk,
)
from ccrouter.codecs.notes import system_note
from ccrouter.codecs.prompt import CleanTexts
from ccrouter.codecs.toolsearch import callable_tools, reference_text
from ccrouter.errors import UpstreamProtocolError
from ccrouter.messages import (
    ImageBlock,
    Message,
    MessagesRequest,
    MessagesResponse,
    OtherBlock,
    TextBlock,
    ThinkingBlock,
    ThinkingConfig,
    Tool,
    ToolChoice,
    ToolResultBlock,
    ToolUseBlock,
)

__all__ = ["GeminiContext", "GeminiStreamDecoder", "decode_response", "encode_request"]

JSON = dict[str, Any]

_SIGNED = SIGNATURE_PREFIX + ":"
_NAME_OK = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")
_MAX_NAME = 64
# generationConfig.stopSequences takes at most 5 entries; more is a 400.
_MAX_STOP_SEQUENCES = 5
# thinkingBudget ranges (https://ai.google.dev/gemini-api/docs/thinking#set-budget): out-of-range
# budgets are a 400 ("thinking_budget is out of range"); Claude Code asks for 31999.
_MAX_BUDGET_PRO = 32768
_MAX_BUDGET = 24576
_TOOL_CHOICE_MODES = {"auto": "AUTO", "any": "ANY", "tool": "ANY", "none": "NONE"}
# Anthropic server tools (``web_search_20250305`` -> ``web_search``) and Gemini's built-in equivalents.
_BUILTIN_TOOLS: dict[str, JSON] = {
    "web_search": {"googleSearch": {}},
    "web_fetch": {"urlContext": {}},
    "code_execution": {"codeExecution": {}},
}
_MIME_BY_SUFFIX = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "heic": "image/heic",
    "heif": "image/heif",
    "pdf": "application/pdf",
}


def encode_request(
    request: MessagesRequest, model: str, *, function_call_ids: bool = True, clean: CleanTexts | None = None
) -> tuple[JSON, GeminiContext]:
    """The ``generateContent`` body for ``request`` and the context its decoders need.

    ``function_call_ids`` sends tool-use ids as ``functionCall.id`` / ``functionResponse.id``, except
    the ids we invented for calls Gemini sent without one. Vertex AI v1 has rejected the field
    ("Unknown name "id""), hence the switch; without ids Gemini pairs responses by name and order.
    ``clean``: texts known to hold no billing line (``ccrouter.codecs.billing``), kept by the caller.
    """
    request = without_billing_line(request, clean)
    names = _ToolNames()
    # No tool search in Gemini: deferred tools go as ordinary ones once loaded (``codecs.toolsearch``).
    tools = _tools(callable_tools(request.tools, request.messages), names)
    builder = _Contents(names, function_call_ids)
    for message in request.messages:
        builder.add(message)
    body: JSON = {"contents": builder.finish()}
    system = _system_instruction(request.system)
    if system is not None:
        body["systemInstruction"] = system
    if tools:
        body["tools"] = tools
        if request.tool_choice is not None and "functionDeclarations" in tools[0]:
            body["toolConfig"] = _tool_config(request.tool_choice, names)
    body["generationConfig"] = _generation_config(request, model)
    return body, GeminiContext(model=model, tool_names=names.renamed())


def decode_response(body: bytes, context: GeminiContext, *, provider: str = "gemini") -> MessagesResponse:
    """A ``generateContent`` response body -> canonical response."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UpstreamProtocolError(f"{provider}: response is not JSON ({exc})", provider=provider) from exc
    return response_from_chunk(data, context, provider=provider)


# --------------------------------------------------------------------------- tool names


class _ToolNames:
    """Client tool name <-> Gemini function name, stable within one request."""

    __slots__ = ("_forward", "_reverse")

    def __init__(self) -> None:
        self._forward: dict[str, str] = {}
        self._reverse: dict[str, str] = {}

    def gemini(self, name: str) -> str:
        found = self._forward.get(name)
        if found is not None:
            return found
        candidate = name if _NAME_OK.fullmatch(name) else _sanitize(name)
        if self._reverse.get(candidate, name) != name:
            candidate = _hashed(candidate, name)
        self._forward[name] = candidate
        self._reverse[candidate] = name
        return candidate

    def renamed(self) -> dict[str, str]:
        return {gemini: client for gemini, client in self._reverse.items() if gemini != client}


def _sanitize(name: str) -> str:
    cleaned = _NAME_UNSAFE.sub("_", name)
    if not cleaned or not (cleaned[0].isalpha() or cleaned[0] == "_"):
        cleaned = "_" + cleaned
    return cleaned if len(cleaned) <= _MAX_NAME else _hashed(cleaned, name)


def _hashed(candidate: str, original: str) -> str:
    digest = hashlib.sha1(original.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"{candidate[: _MAX_NAME - 9]}_{digest}"


# --------------------------------------------------------------------------- contents


class _Contents:
    """Builds ``contents``: alternating user/model turns (adjacent same-role turns are merged)."""

    __slots__ = ("_call_names", "_call_order", "_names", "_pending_system", "_send_ids", "contents")

    def __init__(self, names: _ToolNames, send_ids: bool) -> None:
        self.contents: list[JSON] = []
        self._names = names
        self._send_ids = send_ids
        self._call_names: dict[str, str] = {}  # tool_use id -> Gemini function name
        self._call_order: dict[str, int] = {}  # tool_use id -> position in the last model turn
        self._pending_system: list[JSON] = []

    def add(self, message: Message) -> None:
        if message.role == "assistant":
            self._model_turn(message)
        elif message.role == "user":
            self._user_turn(message)
        else:
            self._system_note(message)

    def _system_note(self, message: Message) -> None:
        """A system message joins the user turn before it (Claude Code's notes follow the user turn or
        the tool result they belong to, and the turn stays as it will be resent); after a model turn
        it waits for the next user turn, behind that turn's function responses."""
        notes = [
            {"text": system_note(block.text)}
            for block in message.content
            if isinstance(block, TextBlock) and block.text
        ]
        if self.contents and self.contents[-1]["role"] == "user" and not self._pending_system:
            self._append("user", notes)
        else:
            self._pending_system.extend(notes)

    def finish(self) -> list[JSON]:
        if self._pending_system:
            self._append("user", self._pending_system)
            self._pending_system = []
        return self.contents

    def _append(self, role: str, parts: list[JSON]) -> None:
        if not parts:
            return
        if self.contents and self.contents[-1]["role"] == role:
            self.contents[-1]["parts"].extend(parts)
        else:
            self.contents.append({"role": role, "parts": parts})

    def _sendable(self, tool_use_id: str) -> bool:
        return self._send_ids and bool(tool_use_id) and not tool_use_id.startswith(GENERATED_ID_PREFIX)

    def _model_turn(self, message: Message) -> None:
        parts: list[JSON] = []
        signature: str | None = None
        if not (self.contents and self.contents[-1]["role"] == "model"):
            self._call_order = {}
        for block in message.content:
            if isinstance(block, ThinkingBlock):
                signature = _thought_signature(block) or signature
                continue
            part = self._model_part(block)
            if part is None:
                continue
            if signature is not None:
                part["thoughtSignature"] = signature
                signature = None
            parts.append(part)
        if signature is not None and parts and "thoughtSignature" not in parts[-1]:
            # A signature after the last part (Gemini sends it on a trailing empty text part).
            parts[-1]["thoughtSignature"] = signature
        self._append("model", parts)

    def _model_part(self, block: Any) -> JSON | None:
        if isinstance(block, TextBlock):
            return {"text": block.text} if block.text else None
        if isinstance(block, ToolUseBlock):
            name = self._names.gemini(block.name)
            self._call_names[block.id] = name
            self._call_order[block.id] = len(self._call_order)
            call: JSON = {"name": name, "args": block.input}
            if self._sendable(block.id):
                call["id"] = block.id
            return {"functionCall": call}
        if isinstance(block, ImageBlock):
            return _image_part(block)
        return None  # server tool blocks, documents: nothing Gemini can take in a model turn

    def _user_turn(self, message: Message) -> None:
        responses: list[tuple[int, JSON]] = []
        media: list[JSON] = []
        others: list[JSON] = []
        for block in message.content:
            if isinstance(block, ToolResultBlock):
                self._tool_result(block, responses, media, others)
                continue
            part = _user_part(block)
            if part is not None:
                others.append(part)
        # Function responses come first, in the order of the calls they answer.
        responses.sort(key=lambda item: item[0])
        parts = [part for _, part in responses]
        parts.extend(media)
        parts.extend(self._pending_system)
        parts.extend(others)
        self._pending_system = []
        self._append("user", parts)

    def _tool_result(
        self, block: ToolResultBlock, responses: list[tuple[int, JSON]], media: list[JSON], others: list[JSON]
    ) -> None:
        texts = [item.text for item in block.content if isinstance(item, TextBlock)]
        loaded = reference_text(block.content)
        text = "\n".join(texts if loaded is None else [loaded, *texts])
        images = [
            part for item in block.content if isinstance(item, ImageBlock) and (part := _image_part(item))
        ]
        name = self._call_names.get(block.tool_use_id)
        if name is None:
            # No matching call in the history: Gemini cannot take a nameless response, keep it as text.
            others.append({"text": f"[tool result {block.tool_use_id}]\n{text}"})
            others.extend(images)
            return
        # FunctionResponse.response: "output" for the result, "error" for a failure (Google's docs).
        response: JSON = {"error" if block.is_error else "output": text}
        call: JSON = {"name": name, "response": response}
        if self._sendable(block.tool_use_id):
            call["id"] = block.tool_use_id
        position = self._call_order.get(block.tool_use_id, len(self._call_order))
        responses.append((position, {"functionResponse": call}))
        media.extend(images)


def _thought_signature(block: ThinkingBlock) -> str | None:
    """Gemini's own signature carried by a thinking block; other thinking is not sent to Gemini."""
    signature = block.signature
    if block.redacted or not signature or not signature.startswith(_SIGNED):
        return None
    return signature[len(_SIGNED) :] or None


def _user_part(block: Any) -> JSON | None:
    if isinstance(block, TextBlock):
        return {"text": block.text} if block.text else None
    if isinstance(block, ImageBlock):
        return _image_part(block)
    if isinstance(block, OtherBlock):
        return _document_part(block.raw)
    return None


def _image_part(block: ImageBlock) -> JSON | None:
    if block.data:
        return {"inlineData": {"mimeType": block.media_type or "image/png", "data": block.data}}
    if block.url:
        return _url_part(block.url, block.media_type)
    return None


def _url_part(url: str, media_type: str | None) -> JSON:
    if url.startswith("data:") and ";base64," in url:
        header, _, data = url.partition(",")
        return {"inlineData": {"mimeType": header[5:].partition(";")[0] or "image/png", "data": data}}
    suffix = urlsplit(url).path.rpartition(".")[2].lower()
    mime = media_type or _MIME_BY_SUFFIX.get(suffix, "image/jpeg")
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _document_part(raw: JSON) -> JSON | None:
    """Anthropic ``document`` blocks (PDF or plain text); other unknown blocks are dropped."""
    source = raw.get("source")
    if raw.get("type") != "document" or not isinstance(source, dict):
        return None
    kind = source.get("type")
    media_type = source.get("media_type") or "application/pdf"
    if kind == "base64" and isinstance(source.get("data"), str):
        return {"inlineData": {"mimeType": media_type, "data": source["data"]}}
    if kind == "url" and isinstance(source.get("url"), str):
        return _url_part(source["url"], "application/pdf")
    if kind == "text" and isinstance(source.get("data"), str):
        return {"text": source["data"]}
    return None


# --------------------------------------------------------------------------- the rest of the body


def _system_instruction(system: list[TextBlock]) -> JSON | None:
    parts: list[JSON] = []
    for block in system:
        if block.text.strip():
            parts.append({"text": block.text})
    return {"parts": parts} if parts else None


def _tools(tools: list[Tool], names: _ToolNames) -> list[JSON]:
    declarations: list[JSON] = []
    builtins: list[JSON] = []
    for tool in tools:
        if tool.server_type is not None:
            builtin = _BUILTIN_TOOLS.get(tool.server_type.rpartition("_")[0] or tool.server_type)
            if builtin is not None and builtin not in builtins:
                builtins.append(builtin)
            continue
        declaration: JSON = {"name": names.gemini(tool.name)}
        if tool.description:
            declaration["description"] = tool.description
        parameters = clean_parameters(tool.input_schema)
        if parameters is not None:
            declaration["parameters"] = parameters
        declarations.append(declaration)
    out: list[JSON] = [{"functionDeclarations": declarations}] if declarations else []
    out.extend(builtins)
    return out


def _tool_config(choice: ToolChoice, names: _ToolNames) -> JSON:
    config: JSON = {"mode": _TOOL_CHOICE_MODES[choice.type]}
    if choice.type == "tool" and choice.name:
        config["allowedFunctionNames"] = [names.gemini(choice.name)]
    return {"functionCallingConfig": config}


def _generation_config(request: MessagesRequest, model: str) -> JSON:
    config: JSON = {"maxOutputTokens": request.max_tokens}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.top_k is not None:
        config["topK"] = request.top_k
    if request.stop_sequences:
        config["stopSequences"] = request.stop_sequences[:_MAX_STOP_SEQUENCES]
    response_schema = _response_schema(request.extra.get("output_config"))
    if response_schema is not None:
        config["responseMimeType"] = "application/json"
        config["responseSchema"] = response_schema
    if request.thinking.on:
        config["thinkingConfig"] = {
            "includeThoughts": True,
            "thinkingBudget": _thinking_budget(request.thinking, model),
        }
    return config


def _response_schema(output_config: Any) -> JSON | None:
    """Anthropic structured output (``output_config.format: {type: json_schema, schema}``, which Claude
    Code uses for titles) as Gemini's JSON mode."""
    fmt = output_config.get("format") if isinstance(output_config, dict) else None
    if (
        not isinstance(fmt, dict)
        or fmt.get("type") != "json_schema"
        or not isinstance(fmt.get("schema"), dict)
    ):
        return None
    return clean_schema(fmt["schema"])


def _thinking_budget(thinking: ThinkingConfig, model: str) -> int:
    """-1 is Gemini's dynamic budget (the model decides), the same idea as Anthropic's adaptive."""
    if thinking.type != "enabled" or not thinking.budget_tokens:
        return -1
    ceiling = _MAX_BUDGET_PRO if "pro" in model else _MAX_BUDGET
    return min(thinking.budget_tokens, ceiling)
