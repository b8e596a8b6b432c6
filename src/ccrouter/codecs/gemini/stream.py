"""Gemini responses -> canonical: the ``streamGenerateContent?alt=sse`` decoder, and the non-streamed
``generateContent`` body, which is one chunk of the same shape folded into a ``MessagesResponse``.

Each SSE ``data:`` is a whole ``GenerateContentResponse`` (https://ai.google.dev/api/generate-content):
``candidates[0].content.parts`` holds this chunk's new parts, ``usageMetadata`` the running totals,
``candidates[0].finishReason`` appears once at the end. Parts map to Anthropic's strictly sequential
blocks: consecutive ``thought: true`` parts form one thinking block, consecutive text parts one text
block, each ``functionCall`` (always complete in one part) one tool_use block.

Thought signatures (https://ai.google.dev/gemini-api/docs/thought-signatures) sit on the part they
belong to (a functionCall, a text, or an empty trailing text) and must be sent back. We carry one as a
thinking block with signature ``ccr:gemini:<thoughtSignature>``: the open thinking block if there is
one, else an empty thinking block placed where the signed part is (before it, or after a text run when
the signed text part is empty). The encoder attaches it to the next part of the same turn again.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import orjson

from ccrouter.codecs.sse import SSEFrame
from ccrouter.errors import UpstreamProtocolError, upstream_error_for_status
from ccrouter.messages import (
    BlockDelta,
    BlockStart,
    BlockStop,
    ContentBlock,
    InputJsonDelta,
    MessageDelta,
    MessagesResponse,
    MessageStart,
    MessageStop,
    SignatureDelta,
    StopReason,
    StreamEvent,
    TextBlock,
    TextDelta,
    ThinkingBlock,
    ThinkingDelta,
    ToolUseBlock,
    Usage,
)

__all__ = [
    "GENERATED_ID_PREFIX",
    "SIGNATURE_PREFIX",
    "GeminiContext",
    "GeminiStreamDecoder",
    "response_from_chunk",
    "stop_reason",
    "usage_from",
]

JSON = dict[str, Any]
SIGNATURE_PREFIX = "ccr:gemini"
# Tool-use ids we invent when Gemini gives none; the encoder does not send them back as Gemini ids.
GENERATED_ID_PREFIX = "toolu_ccrg_"
# Anthropic clients validate tool_use ids against this pattern.
_ID_OK = re.compile(r"[A-Za-z0-9_-]{1,128}")
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
# Our own finish reason for a prompt blocked before any candidate (promptFeedback.blockReason).
_PROMPT_BLOCKED = "PROMPT_BLOCKED"

# https://ai.google.dev/api/generate-content#FinishReason: the content-policy stops are refusals;
# the rest (OTHER, MALFORMED_FUNCTION_CALL, ...) end the turn.
_STOP_REASONS: dict[str, StopReason] = {
    "STOP": "end_turn",
    "MAX_TOKENS": "max_tokens",
    "SAFETY": "refusal",
    "RECITATION": "refusal",
    "LANGUAGE": "refusal",
    "BLOCKLIST": "refusal",
    "PROHIBITED_CONTENT": "refusal",
    "SPII": "refusal",
    "IMAGE_SAFETY": "refusal",
    "IMAGE_PROHIBITED_CONTENT": "refusal",
    "IMAGE_RECITATION": "refusal",
    _PROMPT_BLOCKED: "refusal",
}


@dataclass(slots=True)
class GeminiContext:
    """Per-call state the encoder hands to the decoders."""

    model: str
    # Gemini function name -> the client's tool name, for the names that had to change.
    tool_names: dict[str, str] = field(default_factory=dict)

    def client_tool_name(self, name: str) -> str:
        return self.tool_names.get(name, name)


def _count(meta: JSON, key: str) -> int:
    value = meta.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage_from(meta: Any) -> Usage:
    """``usageMetadata`` -> Anthropic usage: ``promptTokenCount`` includes the cached tokens, which
    Anthropic reports apart; thinking tokens are output tokens (both bill them so)."""
    if not isinstance(meta, dict):
        return Usage()
    cached = _count(meta, "cachedContentTokenCount")
    prompt = _count(meta, "promptTokenCount") + _count(meta, "toolUsePromptTokenCount")
    return Usage(
        input_tokens=max(prompt - cached, 0),
        output_tokens=_count(meta, "candidatesTokenCount") + _count(meta, "thoughtsTokenCount"),
        cache_read_input_tokens=cached,
    )


def stop_reason(finish: str | None, has_tool_use: bool) -> StopReason:
    reason = _STOP_REASONS.get(finish or "STOP", "end_turn")
    return "tool_use" if reason == "end_turn" and has_tool_use else reason


def _signature(part: JSON) -> str | None:
    value = part.get("thoughtSignature")
    return value if isinstance(value, str) and value else None


class GeminiStreamDecoder:
    """Gemini SSE chunks -> canonical events following Anthropic's stream grammar."""

    __slots__ = (
        "_context",
        "_finish",
        "_has_tool_use",
        "_id_base",
        "_index",
        "_open",
        "_provider",
        "_started",
        "_tool_count",
        "_usage",
    )

    def __init__(self, context: GeminiContext, *, provider: str = "gemini") -> None:
        self._context = context
        self._provider = provider
        self._started = False
        self._index = 0
        self._open: str | None = None  # "text" | "thinking": the block currently open
        self._finish: str | None = None
        self._has_tool_use = False
        self._usage = Usage()
        self._id_base = ""
        self._tool_count = 0

    def feed(self, frame: SSEFrame) -> list[StreamEvent]:
        if not frame.data.strip():
            return []
        try:
            chunk = orjson.loads(frame.data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamProtocolError(
                f"{self._provider}: unreadable Gemini stream chunk ({exc})", provider=self._provider
            ) from exc
        return self.consume(chunk)

    def consume(self, chunk: Any) -> list[StreamEvent]:
        """Events for one parsed ``GenerateContentResponse``."""
        if not isinstance(chunk, dict):
            raise UpstreamProtocolError(
                f"{self._provider}: Gemini chunk is not an object", provider=self._provider
            )
        error = chunk.get("error")
        if isinstance(error, dict):
            raise _in_band_error(error, self._provider)
        events: list[StreamEvent] = []
        if not self._started:
            events.append(self._start(chunk))
        meta = chunk.get("usageMetadata")
        if isinstance(meta, dict):
            self._usage = usage_from(meta)
        candidates = chunk.get("candidates")
        candidate = candidates[0] if isinstance(candidates, list) and candidates else None
        if isinstance(candidate, dict):
            content = candidate.get("content")
            parts = content.get("parts") if isinstance(content, dict) else None
            for part in parts if isinstance(parts, list) else ():
                if isinstance(part, dict):
                    self._part(part, events)
            finish = candidate.get("finishReason")
            if isinstance(finish, str) and finish:
                self._finish = finish
                self._close(events)
        else:
            feedback = chunk.get("promptFeedback")
            if isinstance(feedback, dict) and feedback.get("blockReason"):
                self._finish = _PROMPT_BLOCKED
        return events

    def finish(self) -> list[StreamEvent]:
        """Close the message; a stream that never sent a finishReason was cut short."""
        if self._finish is None:
            raise UpstreamProtocolError(
                f"{self._provider}: Gemini stream ended without a finishReason", provider=self._provider
            )
        events: list[StreamEvent] = []
        self._close(events)
        events.append(
            MessageDelta(stop_reason=stop_reason(self._finish, self._has_tool_use), usage=self._usage)
        )
        events.append(MessageStop())
        return events

    # ----------------------------------------------------------------------- internals

    def _start(self, chunk: JSON) -> MessageStart:
        self._started = True
        response_id = chunk.get("responseId")
        base = _ID_UNSAFE.sub("", response_id) if isinstance(response_id, str) else ""
        self._id_base = base or secrets.token_hex(12)
        start_usage = usage_from(chunk.get("usageMetadata"))
        start_usage.output_tokens = 0
        return MessageStart(id=f"msg_{self._id_base}", model=self._context.model, usage=start_usage)

    def _part(self, part: JSON, events: list[StreamEvent]) -> None:
        signature = _signature(part)
        if part.get("thought") is True:
            text = part.get("text")
            if text or signature:
                self._thinking(text if isinstance(text, str) else "", signature, events)
            return
        call = part.get("functionCall")
        if isinstance(call, dict):
            if signature:
                self._carry_signature(signature, events)
            self._tool_use(call, events)
            return
        text = part.get("text")
        if not isinstance(text, str):
            return  # inlineData, executableCode...: no Anthropic block for them
        # A signed empty text closes a text run (signature after it); a signed text starts one.
        if signature:
            self._carry_signature(signature, events)
        if text:
            if self._open != "text":
                self._close(events)
                self._open_block(TextBlock(text=""), "text", events)
            events.append(BlockDelta(self._index, TextDelta(text)))

    def _thinking(self, text: str, signature: str | None, events: list[StreamEvent]) -> None:
        if self._open != "thinking":
            self._close(events)
            self._open_block(ThinkingBlock(origin="gemini"), "thinking", events)
        if text:
            events.append(BlockDelta(self._index, ThinkingDelta(text)))
        if signature:
            self._close(events, signature)

    def _carry_signature(self, signature: str, events: list[StreamEvent]) -> None:
        """Put a non-thought part's signature on the open thinking block, or on a new empty one."""
        if self._open != "thinking":
            self._close(events)
            self._open_block(ThinkingBlock(origin="gemini"), "thinking", events)
        self._close(events, signature)

    def _tool_use(self, call: JSON, events: list[StreamEvent]) -> None:
        self._close(events)
        name = call.get("name")
        args = call.get("args")
        block = ToolUseBlock(
            id=self._tool_id(call.get("id")),
            name=self._context.client_tool_name(name if isinstance(name, str) else ""),
            input={},
        )
        self._has_tool_use = True
        events.append(BlockStart(self._index, block))
        arguments = orjson.dumps(args if isinstance(args, dict) else {}).decode()
        events.append(BlockDelta(self._index, InputJsonDelta(arguments)))
        events.append(BlockStop(self._index))
        self._index += 1

    def _tool_id(self, given: Any) -> str:
        if isinstance(given, str) and _ID_OK.fullmatch(given):
            return given
        self._tool_count += 1
        return f"{GENERATED_ID_PREFIX}{self._id_base}_{self._tool_count}"

    def _open_block(self, block: ContentBlock, kind: str, events: list[StreamEvent]) -> None:
        events.append(BlockStart(self._index, block))
        self._open = kind

    def _close(self, events: list[StreamEvent], signature: str | None = None) -> None:
        if self._open is None:
            return
        if self._open == "thinking":
            # Anthropic's grammar ends every thinking block with a signature_delta.
            payload = f"{SIGNATURE_PREFIX}:{signature}" if signature else SIGNATURE_PREFIX
            events.append(BlockDelta(self._index, SignatureDelta(payload)))
        events.append(BlockStop(self._index))
        self._index += 1
        self._open = None


def _in_band_error(error: JSON, provider: str) -> Exception:
    """An ``{"error": {code, message, status}}`` chunk sent after the 200 head."""
    code = error.get("code")
    status = code if isinstance(code, int) and 400 <= code <= 599 else 500
    message = f"{provider}: {error.get('status') or 'ERROR'}: {error.get('message') or 'stream error'}"
    return upstream_error_for_status(status, message, provider=provider)


def response_from_chunk(data: Any, context: GeminiContext, *, provider: str = "gemini") -> MessagesResponse:
    """A whole ``generateContent`` body -> ``MessagesResponse``, through the stream decoder so both
    paths build the same blocks."""
    decoder = GeminiStreamDecoder(context, provider=provider)
    events = decoder.consume(data)
    if decoder._finish is None:
        has_candidates = isinstance(data, dict) and bool(data.get("candidates"))
        if not has_candidates:
            raise UpstreamProtocolError(f"{provider}: Gemini response has no candidates", provider=provider)
        decoder._finish = "STOP"  # a complete body that omits finishReason: it did finish
    events.extend(decoder.finish())
    return _fold(events)


def _fold(events: list[StreamEvent]) -> MessagesResponse:
    start = events[0]
    if not isinstance(start, MessageStart):  # consume() always opens with it; keeps mypy informed
        raise TypeError("a decoded response must start with MessageStart")
    blocks: list[ContentBlock] = []
    final = MessageDelta(stop_reason="end_turn")
    for event in events:
        if isinstance(event, BlockStart):
            blocks.append(event.block)
        elif isinstance(event, BlockDelta):
            _apply(blocks[-1], event)
        elif isinstance(event, MessageDelta):
            final = event
    return MessagesResponse(
        id=start.id,
        model=start.model,
        content=blocks,
        stop_reason=final.stop_reason,
        usage=final.usage,
        raw_format="gemini",
    )


def _apply(block: ContentBlock, event: BlockDelta) -> None:
    delta = event.delta
    if isinstance(delta, TextDelta) and isinstance(block, TextBlock):
        block.text += delta.text
    elif isinstance(delta, ThinkingDelta) and isinstance(block, ThinkingBlock):
        block.thinking += delta.thinking
    elif isinstance(delta, SignatureDelta) and isinstance(block, ThinkingBlock):
        block.signature = delta.signature
    elif isinstance(delta, InputJsonDelta) and isinstance(block, ToolUseBlock):
        block.input = orjson.loads(delta.partial_json)
