"""The Gemini front side: clients that call our ``POST /v1beta/models/{model}:generateContent``
(Gemini CLI, the google-genai SDKs).

``decode_request`` reads a ``GenerateContentRequest`` into the canonical request, ``encode_response``
answers with a ``GenerateContentResponse`` (streams: ``front_stream.GeminiFrontStreamEncoder``).
Reference: https://ai.google.dev/api/generate-content. What does not map one to one:

- Tool-use ids. ``functionCall.id`` / ``functionResponse.id`` are optional in Gemini. We send the
  canonical tool-use id as ``functionCall.id`` (Gemini CLI and the SDKs send it back on the
  response). A call the client sent without an id (or with one an Anthropic upstream would reject)
  gets ``toolu_ccrg_c<content index>_<call index in that turn>``: stable for as long as the history
  is resent unchanged. A ``functionResponse`` answers the call of the preceding model turn with its
  id if it names one we know, else the first still unanswered call of the same name, in order
  (calls that another response of the turn names by id come last); one that answers no call is
  kept as user text (canonical tool results must follow their call).
- Thinking is signed per part (``thoughtSignature``). A Gemini upstream's signature is passed on as
  is; thinking of another origin (an Anthropic model's, whose signed block must come back verbatim
  in a tool loop) travels inside an opaque signature of ours, ``ccr1.<base64url JSON>``, on the part
  after it (an empty text part when nothing follows), and is unpacked when the client resends it.
  Thought text is sent only when ``thinkingConfig.includeThoughts`` asked for it.
- ``usageMetadata.promptTokenCount`` counts cached input too; ``candidatesTokenCount`` is the
  canonical output, thinking included (the canonical usage has no split, so no
  ``thoughtsTokenCount``).
- Structured output (``responseMimeType: application/json`` + ``responseSchema`` or
  ``responseJsonSchema``) is kept as ``extra["output_config"]``, which a Gemini upstream reads;
  other upstreams answer in free text.
- Only the first candidate exists: ``candidateCount`` above 1 is a 400.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Literal

import orjson

from ccrouter.codecs.gemini.schema import json_schema_from_gemini
from ccrouter.codecs.gemini.stream import GENERATED_ID_PREFIX, SIGNATURE_PREFIX
from ccrouter.codecs.ids import GEMINI_ID_PREFIX, client_id
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
    "DEFAULT_MAX_TOKENS",
    "ENVELOPE_PREFIX",
    "count_tokens_body",
    "decode_request",
    "encode_response",
    "error_envelope",
    "error_envelope_for_type",
    "finish_reason",
    "google_status",
    "include_thoughts",
    "response_id",
    "signature_for",
    "usage_metadata",
]

JSON = dict[str, Any]
# Gemini's own default is the model's limit; a canonical request needs a number.
DEFAULT_MAX_TOKENS = 8192
# Our thoughtSignature for thinking that is not Gemini's (see the module docstring).
ENVELOPE_PREFIX = "ccr1."
_GEMINI_SIGNED = SIGNATURE_PREFIX + ":"
# Tool-use ids Anthropic accepts; others are replaced (see the module docstring).
_ID_OK = re.compile(r"[A-Za-z0-9_-]{1,128}")
_MODES: dict[str, Literal["auto", "any", "none"]] = {
    "AUTO": "auto",
    "ANY": "any",
    "NONE": "none",
    "VALIDATED": "auto",
    "MODE_UNSPECIFIED": "auto",
}
# thinkingLevel (Gemini 3) -> (effort, budget), in the bands the upstream encoders map back.
_LEVELS = {
    "MINIMAL": ("low", 1024),
    "LOW": ("low", 2048),
    "MEDIUM": ("medium", 8192),
    "HIGH": ("high", 16384),
}
# Anthropic's smallest thinking budget.
_MIN_BUDGET = 1024


# =========================================================================== request


def decode_request(body: Any, model: str, *, stream: bool) -> MessagesRequest:
    """A canonical request from a Gemini client's ``GenerateContentRequest`` for ``model`` (the path's
    model, which routing resolves as it does any client's model name)."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object (a GenerateContentRequest)")
    if not model:
        raise RequestError("the model in the path is empty")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise RequestError("contents: required, a non-empty array of Content objects")
    config = _object(body.get("generationConfig"), "generationConfig")
    thinking, effort = _thinking(_object(config.get("thinkingConfig"), "generationConfig.thinkingConfig"))
    tools = _tools(body.get("tools"))
    choice, tools = _tool_config(_object(body.get("toolConfig"), "toolConfig"), tools)
    max_tokens = _positive(config, "maxOutputTokens") or DEFAULT_MAX_TOKENS
    if thinking.type == "enabled" and thinking.budget_tokens and thinking.budget_tokens >= max_tokens:
        # Anthropic requires max_tokens above the budget; Gemini counts them apart.
        max_tokens = thinking.budget_tokens + DEFAULT_MAX_TOKENS
    candidates = config.get("candidateCount")
    if candidates not in (None, 1):
        raise RequestError(f"generationConfig.candidateCount: only 1 is supported here, got {candidates!r}")
    request = MessagesRequest(
        model=model.removeprefix("models/"),
        messages=_Contents().decode(contents),
        max_tokens=max_tokens,
        system=_system(body.get("systemInstruction")),
        stream=stream,
        temperature=_number(config, "temperature"),
        top_p=_number(config, "topP"),
        top_k=_integer(config, "topK"),
        stop_sequences=_stop(config.get("stopSequences")),
        tools=tools,
        tool_choice=choice,
        thinking=thinking,
        effort=effort,
        extra=_output_config(config),
    )
    request.received = Received("gemini", body, request.copy())
    return request


def include_thoughts(request: MessagesRequest) -> bool:
    """Whether the Gemini client asked for thought parts (``thinkingConfig.includeThoughts``)."""
    received = request.received
    if received is None or received.format != "gemini":
        return False
    config = received.body.get("generationConfig")
    thinking = config.get("thinkingConfig") if isinstance(config, dict) else None
    return isinstance(thinking, dict) and thinking.get("includeThoughts") is True


def _object(value: object, path: str) -> JSON:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RequestError(f"{path}: expected an object")
    return value


def _number(config: JSON, key: str) -> float | None:
    value = config.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise RequestError(f"generationConfig.{key}: expected a number, got {value!r}")
    return float(value)


def _integer(config: JSON, key: str) -> int | None:
    value = config.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise RequestError(f"generationConfig.{key}: expected a non-negative integer, got {value!r}")
    return value


def _positive(config: JSON, key: str) -> int | None:
    value = _integer(config, key)
    if value == 0:
        raise RequestError(f"generationConfig.{key}: expected a positive integer, got 0")
    return value


def _stop(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item for item in value if item]
    raise RequestError("generationConfig.stopSequences: expected an array of strings")


def _thinking(config: JSON) -> tuple[ThinkingConfig, str | None]:
    """``thinkingConfig``: a budget of 0 turns thinking off, -1 lets the model decide (adaptive), a
    positive one is a budget; ``thinkingLevel`` is an effort. Without it, no thinking is asked for."""
    level = config.get("thinkingLevel")
    if level is not None:
        mapped = _LEVELS.get(level.upper()) if isinstance(level, str) else None
        if mapped is None:
            raise RequestError(
                f"generationConfig.thinkingConfig.thinkingLevel: expected one of {', '.join(_LEVELS)}; "
                f"got {level!r}"
            )
        return ThinkingConfig(type="enabled", budget_tokens=mapped[1]), mapped[0]
    budget = config.get("thinkingBudget")
    if budget is None:
        return ThinkingConfig(), None
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < -1:
        raise RequestError(
            "generationConfig.thinkingConfig.thinkingBudget: expected -1, 0 or a positive integer, "
            f"got {budget!r}"
        )
    if budget == 0:
        return ThinkingConfig(), None
    if budget == -1:
        return ThinkingConfig(type="adaptive"), None
    return ThinkingConfig(type="enabled", budget_tokens=max(budget, _MIN_BUDGET)), None


def _output_config(config: JSON) -> JSON:
    if config.get("responseMimeType") != "application/json":
        return {}
    schema = config.get("responseJsonSchema")
    if not isinstance(schema, dict):
        gemini_schema = config.get("responseSchema")
        schema = json_schema_from_gemini(gemini_schema) if isinstance(gemini_schema, dict) else None
    if schema is None:
        return {}
    return {"output_config": {"format": {"type": "json_schema", "schema": schema}}}


def _system(value: object) -> list[TextBlock]:
    if value is None:
        return []
    if isinstance(value, str):  # the SDKs send a Content; a bare string is forgiven
        return [TextBlock(text=value)] if value else []
    if not isinstance(value, dict) or not isinstance(value.get("parts", []), list):
        raise RequestError("systemInstruction: expected a Content object with parts")
    return [
        TextBlock(text=part["text"])
        for part in value.get("parts", [])
        if isinstance(part, dict) and isinstance(part.get("text"), str) and part["text"]
    ]


# --------------------------------------------------------------------------- tools


def _tools(value: object) -> list[Tool]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RequestError("tools: expected an array of Tool objects")
    tools: list[Tool] = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise RequestError(f"tools[{index}]: expected an object")
        declarations = item.get("functionDeclarations", [])
        if not isinstance(declarations, list):
            raise RequestError(f"tools[{index}].functionDeclarations: expected an array")
        for position, declaration in enumerate(declarations):
            tools.append(_declaration(declaration, f"tools[{index}].functionDeclarations[{position}]"))
        # googleSearch, codeExecution, urlContext...: Gemini's own tools, served by no other
        # provider under these names; dropped.
    return tools


def _declaration(value: object, path: str) -> Tool:
    if not isinstance(value, dict):
        raise RequestError(f"{path}: expected an object")
    name = value.get("name")
    if not isinstance(name, str) or not name:
        raise RequestError(f"{path}.name: required, a non-empty string")
    schema = value.get("parametersJsonSchema")
    if not isinstance(schema, dict):
        parameters = value.get("parameters")
        schema = json_schema_from_gemini(parameters) if isinstance(parameters, dict) else None
    description = value.get("description")
    return Tool(
        name=name,
        description=description if isinstance(description, str) and description else None,
        input_schema=schema if schema is not None else {"type": "object", "properties": {}},
    )


def _tool_config(config: JSON, tools: list[Tool]) -> tuple[ToolChoice | None, list[Tool]]:
    calling = _object(config.get("functionCallingConfig"), "toolConfig.functionCallingConfig")
    if not calling:
        return None, tools
    mode = calling.get("mode", "AUTO")
    kind = _MODES.get(mode) if isinstance(mode, str) else None
    if kind is None:
        raise RequestError(
            f"toolConfig.functionCallingConfig.mode: expected AUTO, ANY, NONE or VALIDATED; got {mode!r}"
        )
    allowed = calling.get("allowedFunctionNames")
    if allowed is None or kind != "any":
        return ToolChoice(type=kind), tools
    if not isinstance(allowed, list) or not all(isinstance(name, str) for name in allowed):
        raise RequestError(
            "toolConfig.functionCallingConfig.allowedFunctionNames: expected an array of strings"
        )
    if len(allowed) == 1:
        return ToolChoice(type="tool", name=allowed[0]), tools
    # Several: the model must call one of them, so only they are offered.
    return ToolChoice(type="any"), [tool for tool in tools if tool.name in allowed] or tools


# --------------------------------------------------------------------------- contents


class _Contents:
    """``contents`` -> canonical messages: tool-use ids kept or made, responses paired to calls (see
    the module docstring), adjacent turns of one role joined, tool results first in a user turn."""

    __slots__ = ("_open", "_renamed", "messages")

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._open: list[ToolUseBlock] = []  # calls of the last model turn not yet answered
        self._renamed: dict[str, str] = {}  # a client's unusable call id -> the id we gave it

    def decode(self, contents: list[Any]) -> list[Message]:
        for index, content in enumerate(contents):
            path = f"contents[{index}]"
            if not isinstance(content, dict):
                raise RequestError(f"{path}: expected a Content object")
            parts = content.get("parts")
            if not isinstance(parts, list):
                raise RequestError(f"{path}.parts: required, an array of Part objects")
            role = content.get("role", "user")
            if role == "model":
                self._model_turn(parts, index, path)
            elif role in ("user", "function"):  # "function": the older name of a response turn
                self._user_turn(parts, path)
            else:
                raise RequestError(f"{path}.role: expected user or model, got {role!r}")
        return [message for message in self.messages if message.content]

    def _append(self, role: Literal["user", "assistant"], blocks: list[ContentBlock]) -> None:
        if not blocks:
            return
        if self.messages and self.messages[-1].role == role:
            self.messages[-1].content.extend(blocks)
        else:
            self.messages.append(Message(role=role, content=blocks))
        if role == "user":
            # Anthropic wants a turn's tool results before anything else in it.
            content = self.messages[-1].content
            content.sort(key=lambda block: not isinstance(block, ToolResultBlock))

    def _model_turn(self, parts: list[Any], index: int, path: str) -> None:
        if not (self.messages and self.messages[-1].role == "assistant"):
            self._open = []
        blocks: list[ContentBlock] = []
        calls = 0
        for position, part in enumerate(parts):
            where = f"{path}.parts[{position}]"
            if not isinstance(part, dict):
                raise RequestError(f"{where}: expected a Part object")
            signature = part.get("thoughtSignature")
            if isinstance(signature, str) and signature:
                blocks.append(_thinking_from_signature(signature))
            if part.get("thought") is True:
                continue  # thought summaries are not sent back to any model
            call = part.get("functionCall")
            if call is not None:
                block = self._call(call, index, calls, where)
                calls += 1
                self._open.append(block)
                blocks.append(block)
                continue
            decoded = _plain_part(part, where)
            if decoded is not None:
                blocks.append(decoded)
        self._append("assistant", blocks)

    def _call(self, call: object, index: int, position: int, path: str) -> ToolUseBlock:
        if not isinstance(call, dict):
            raise RequestError(f"{path}.functionCall: expected an object")
        name = call.get("name")
        if not isinstance(name, str) or not name:
            raise RequestError(f"{path}.functionCall.name: required, a non-empty string")
        args = call.get("args", {})
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise RequestError(f"{path}.functionCall.args: expected an object")
        given = call.get("id")
        call_id = f"{GENERATED_ID_PREFIX}c{index}_{position}"
        if isinstance(given, str) and given:
            if _ID_OK.fullmatch(given):
                call_id = given
            else:
                self._renamed[given] = call_id
        return ToolUseBlock(id=call_id, name=name, input=args)

    def _user_turn(self, parts: list[Any], path: str) -> None:
        # Calls that a response of this turn names by id: an id-less response takes another one.
        responses = (p.get("functionResponse") for p in parts if isinstance(p, dict))
        given: set[str] = {r["id"] for r in responses if isinstance(r, dict) and isinstance(r.get("id"), str)}
        claimed = {self._renamed.get(call_id, call_id) for call_id in given}
        blocks: list[ContentBlock] = []
        for position, part in enumerate(parts):
            where = f"{path}.parts[{position}]"
            if not isinstance(part, dict):
                raise RequestError(f"{where}: expected a Part object")
            response = part.get("functionResponse")
            if response is not None:
                blocks.append(self._response(response, where, claimed))
                continue
            if part.get("thought") is True:
                continue
            if part.get("functionCall") is not None:
                raise RequestError(f"{where}.functionCall: a function call belongs in a model turn")
            decoded = _plain_part(part, where)
            if decoded is not None:
                blocks.append(decoded)
        self._append("user", blocks)

    def _response(self, value: object, path: str, claimed: set[str]) -> ContentBlock:
        if not isinstance(value, dict):
            raise RequestError(f"{path}.functionResponse: expected an object")
        name = value.get("name")
        if not isinstance(name, str) or not name:
            raise RequestError(f"{path}.functionResponse.name: required, a non-empty string")
        text, is_error = _response_text(value.get("response"), f"{path}.functionResponse.response")
        content: list[ToolResultPart] = [TextBlock(text=text)] if text else []
        extra = value.get("parts")
        for item in extra if isinstance(extra, list) else ():
            if isinstance(item, dict):
                block = _plain_part(item, f"{path}.functionResponse.parts")
                if isinstance(block, TextBlock | ImageBlock):
                    content.append(block)
        call = self._match(value.get("id"), name, claimed)
        if call is None:
            # Answers no call of the previous turn: what it says still reaches the model.
            return TextBlock(text=f"[function response {name}]\n{text}")
        return ToolResultBlock(tool_use_id=call.id, content=content, is_error=is_error)

    def _match(self, given: object, name: str, claimed: set[str]) -> ToolUseBlock | None:
        wanted = self._renamed.get(given, given) if isinstance(given, str) else None
        found = next((call for call in self._open if wanted is not None and call.id == wanted), None)
        if found is None:
            same = [call for call in self._open if call.name == name]
            found = next((call for call in same if call.id not in claimed), same[0] if same else None)
        if found is not None:
            self._open.remove(found)
        return found


def _response_text(response: object, path: str) -> tuple[str, bool]:
    """``FunctionResponse.response``: ``{"output": ...}`` for a result, ``{"error": ...}`` for a
    failure (Google's convention), any other object as its JSON."""
    if response is None:
        return "", False
    if not isinstance(response, dict):
        raise RequestError(f"{path}: expected an object")
    if set(response) == {"output"} and isinstance(response["output"], str):
        return response["output"], False
    if "error" in response:
        error = response["error"]
        return (error if isinstance(error, str) else orjson.dumps(error).decode()), True
    return orjson.dumps(response).decode(), False


def _plain_part(part: JSON, path: str) -> ContentBlock | None:
    """A text, inlineData or fileData part; others (executableCode...) have no canonical block."""
    text = part.get("text")
    if text is not None:
        if not isinstance(text, str):
            raise RequestError(f"{path}.text: expected a string")
        return TextBlock(text=text) if text else None
    inline = part.get("inlineData")
    if inline is not None:
        if not isinstance(inline, dict) or not isinstance(inline.get("data"), str):
            raise RequestError(f"{path}.inlineData: expected an object with mimeType and base64 data")
        mime = inline.get("mimeType")
        return _media(mime if isinstance(mime, str) else "", data=inline["data"])
    file = part.get("fileData")
    if file is not None:
        if not isinstance(file, dict) or not isinstance(file.get("fileUri"), str):
            raise RequestError(f"{path}.fileData: expected an object with mimeType and fileUri")
        mime = file.get("mimeType")
        return _media(mime if isinstance(mime, str) else "", url=file["fileUri"])
    return None


def _media(mime: str, *, data: str | None = None, url: str | None = None) -> ContentBlock:
    if mime.startswith("image/"):
        return ImageBlock(media_type=mime, data=data, url=url)
    if mime == "application/pdf":  # an Anthropic document, which the other encoders also read
        source = {"type": "base64", "media_type": mime, "data": data} if data else {"type": "url", "url": url}
        return OtherBlock(raw={"type": "document", "source": source})
    if mime.startswith("text/") and data is not None:
        try:
            return TextBlock(text=base64.b64decode(data, validate=True).decode("utf-8"))
        except (binascii.Error, UnicodeDecodeError):
            pass
    kind = mime or "a file"
    return TextBlock(text=f"[{kind} attachment omitted: the model behind this gateway cannot read it]")


# --------------------------------------------------------------------------- signatures


def signature_for(block: ThinkingBlock) -> str | None:
    """The ``thoughtSignature`` that carries ``block`` to the client and back: a Gemini upstream's own
    signature, else our envelope of the block (None for unsigned thinking, which no model needs)."""
    signature = block.signature or ""
    if signature.startswith(_GEMINI_SIGNED):
        return signature[len(_GEMINI_SIGNED) :] or None
    if block.redacted:
        packed: JSON = {"r": block.data or ""}
    elif signature and not signature.startswith("ccr:"):
        packed = {"t": block.thinking, "s": signature, "o": block.origin}
    else:
        return None
    return ENVELOPE_PREFIX + base64.urlsafe_b64encode(orjson.dumps(packed)).decode().rstrip("=")


def _thinking_from_signature(signature: str) -> ThinkingBlock:
    if signature.startswith(ENVELOPE_PREFIX):
        packed = _unpack(signature[len(ENVELOPE_PREFIX) :])
        if packed is not None:
            if isinstance(packed.get("r"), str):
                return ThinkingBlock(redacted=True, data=packed["r"])
            thinking, sig, origin = packed.get("t"), packed.get("s"), packed.get("o")
            if isinstance(thinking, str) and isinstance(sig, str) and isinstance(origin, str):
                return ThinkingBlock(thinking=thinking, signature=sig, origin=origin)
    # Gemini's own (or Gemini CLI's "skip_thought_signature_validator"): back to a Gemini upstream.
    return ThinkingBlock(signature=f"{_GEMINI_SIGNED}{signature}", origin="gemini")


def _unpack(text: str) -> JSON | None:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError):
        return None
    return data if isinstance(data, dict) else None


# =========================================================================== response

_FINISH_REASONS: dict[str, str] = {"max_tokens": "MAX_TOKENS", "refusal": "SAFETY"}


def finish_reason(stop_reason: StopReason | None) -> str:
    """Gemini's finishReason for a canonical stop reason (a function call ends with STOP too)."""
    return _FINISH_REASONS.get(stop_reason or "end_turn", "STOP")


def usage_metadata(usage: Usage) -> JSON:
    """``usageMetadata``: the prompt count includes cached input, as Gemini's does."""
    prompt = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
    meta: JSON = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": usage.output_tokens,
        "totalTokenCount": prompt + usage.output_tokens,
    }
    if usage.cache_read_input_tokens:
        meta["cachedContentTokenCount"] = usage.cache_read_input_tokens
    return meta


def response_id(upstream_id: str) -> str:
    """Gemini's ``responseId`` has no prefix: the upstream id without another format's."""
    return client_id(upstream_id, GEMINI_ID_PREFIX)


def encode_response(response: MessagesResponse, model: str, *, thoughts: bool = False) -> bytes:
    """A ``GenerateContentResponse`` body for a Gemini client. ``thoughts``: include thought parts."""
    parts: list[JSON] = []
    pending: str | None = None
    for block in response.content:
        if isinstance(block, ThinkingBlock):
            if thoughts and block.thinking and not block.redacted:
                parts.append({"text": block.thinking, "thought": True})
            pending = signature_for(block) or pending
            continue
        part = _response_part(block)
        if part is None:
            continue
        if pending is not None:
            part["thoughtSignature"] = pending
            pending = None
        parts.append(part)
    if pending is not None:
        parts.append({"text": "", "thoughtSignature": pending})
    body = {
        "candidates": [
            {
                "content": {"role": "model", "parts": parts},
                "finishReason": finish_reason(response.stop_reason),
                "index": 0,
            }
        ],
        "usageMetadata": usage_metadata(response.usage),
        "modelVersion": model,
        "responseId": response_id(response.id),
    }
    return orjson.dumps(body)


def _response_part(block: ContentBlock) -> JSON | None:
    if isinstance(block, TextBlock):
        return {"text": block.text} if block.text else None
    if isinstance(block, ToolUseBlock):
        return {"functionCall": {"id": block.id, "name": block.name, "args": block.input}}
    if isinstance(block, ImageBlock) and block.data:
        return {"inlineData": {"mimeType": block.media_type or "image/png", "data": block.data}}
    return None  # server tool blocks and the like: nothing a Gemini client reads


# google.rpc.Code names by HTTP status (https://cloud.google.com/apis/design/errors#handling_errors).
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
# Canonical (Anthropic) error types -> the HTTP status a Google client acts on. Anthropic's 529
# overloaded is Google's 503 UNAVAILABLE, which the SDKs retry.
_STATUS_BY_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "overloaded_error": 503,
    "timeout_error": 504,
    "api_error": 500,
}


def google_status(status: int) -> int:
    """The HTTP status a Google client gets for ours (529 is no Google status: 503)."""
    return 503 if status == 529 else status


def error_envelope(status: int, message: str) -> JSON:
    """Google's error envelope, ``{"error": {"code", "message", "status"}}``."""
    code = google_status(status)
    name = _STATUS_NAMES.get(code, "INTERNAL" if code >= 500 else "FAILED_PRECONDITION")
    return {"error": {"code": code, "message": message, "status": name}}


def error_envelope_for_type(error_type: str, message: str) -> JSON:
    """Google's envelope for a canonical error type (a failure after the stream began)."""
    return error_envelope(_STATUS_BY_TYPE.get(error_type, 500), message)


def count_tokens_body(total: int) -> bytes:
    """A ``CountTokensResponse``."""
    return orjson.dumps({"totalTokens": total})
