"""Amazon Bedrock ConverseStream -> canonical stream events, and the pieces the non-streamed codec
shares (usage, stop reasons, reasoning blocks).

Wire reference: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html.
Each event arrives as one event stream message (``ccrouter.codecs.eventstream``) whose
``:event-type`` names it, handed over as an ``SSEFrame`` (``event``: the type, ``data``: the JSON
payload): ``messageStart``, per block ``contentBlockStart`` (tool use only: text and reasoning blocks
begin with their first delta) / ``contentBlockDelta``* / ``contentBlockStop``, ``messageStop`` (stop
reason), then ``metadata`` (usage). The canonical ``MessageDelta`` needs the usage, so it and
``MessageStop`` go out at ``metadata`` (or at the end, if it never comes). Payload fields we do not
know (the ``p`` padding Bedrock adds, metrics, traces) are ignored; so are unknown event types.
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson

from ccrouter.codecs.sse import SSEFrame
from ccrouter.errors import UpstreamProtocolError
from ccrouter.messages import (
    BlockDelta,
    BlockStart,
    BlockStop,
    ContentBlock,
    Delta,
    InputJsonDelta,
    MessageDelta,
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
    "SIGNATURE_PREFIX",
    "ConverseStreamDecoder",
    "decode_usage",
    "response_id",
    "stop_reason",
    "thinking_block",
]

JSON = dict[str, Any]
WIRE = "converse"
SIGNATURE_PREFIX = "ccr:converse:"
# https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html#API_runtime_Converse_ResponseSyntax
_STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "model_context_window_exceeded": "max_tokens",
    "guardrail_intervened": "refusal",
    "content_filtered": "refusal",
}


def response_id() -> str:
    """Converse answers carry no id: a fresh one (the client's encoder adds its own prefix)."""
    return "bdrk_" + secrets.token_hex(12)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def decode_usage(raw: Any) -> Usage:
    """Converse usage -> canonical (``inputTokens`` excludes cached input, as Anthropic counts)."""
    if not isinstance(raw, dict):
        return Usage()
    return Usage(
        input_tokens=_int(raw.get("inputTokens")),
        output_tokens=_int(raw.get("outputTokens")),
        cache_read_input_tokens=_int(raw.get("cacheReadInputTokens")),
        cache_creation_input_tokens=_int(raw.get("cacheWriteInputTokens")),
    )


def stop_reason(value: Any, has_tool_use: bool) -> StopReason:
    found = _STOP_REASONS.get(value) if isinstance(value, str) else None
    if found is None:
        return "tool_use" if has_tool_use else "end_turn"
    return found


def thinking_block(reasoning: JSON) -> ThinkingBlock | None:
    """A ``reasoningContent`` block of an answer."""
    text = reasoning.get("reasoningText")
    if isinstance(text, dict):
        signature = text.get("signature")
        return ThinkingBlock(
            thinking=str(text.get("text") or ""),
            signature=SIGNATURE_PREFIX + signature if isinstance(signature, str) and signature else None,
            origin=WIRE,
        )
    redacted = reasoning.get("redactedContent")
    if isinstance(redacted, str):
        return ThinkingBlock(redacted=True, data=redacted, signature=SIGNATURE_PREFIX, origin=WIRE)
    return None


class ConverseStreamDecoder:
    """ConverseStream events (as frames) -> canonical events. Stateful, one per call."""

    __slots__ = ("_has_tools", "_index", "_model", "_open", "_started", "_stop", "_stopped", "_wire_index")

    def __init__(self, model: str) -> None:
        self._model = model
        self._started = False
        self._index = -1  # our index of the open (or last) block
        self._wire_index: Any = None  # Converse's contentBlockIndex of the open block
        self._open: str | None = None  # the open block's kind: "text", "thinking", "tool_use"
        self._has_tools = False
        self._stop: StopReason | None = None
        self._stopped = False  # MessageDelta and MessageStop sent

    def feed(self, frame: SSEFrame) -> list[StreamEvent]:
        if self._stopped:
            return []
        try:
            data = orjson.loads(frame.data) if frame.data else {}
        except orjson.JSONDecodeError as exc:
            raise UpstreamProtocolError(f"converse stream: invalid JSON in a {frame.event} event") from exc
        if not isinstance(data, dict):
            raise UpstreamProtocolError(f"converse stream: the {frame.event} event is not a JSON object")
        out: list[StreamEvent] = []
        kind = frame.event
        if kind != "messageStart" and not self._started:
            out.append(self._message_start())
        if kind == "messageStart":
            if not self._started:
                out.append(self._message_start())
        elif kind == "contentBlockStart":
            start = data.get("start")
            tool = start.get("toolUse") if isinstance(start, dict) else None
            if isinstance(tool, dict):
                block = ToolUseBlock(id=str(tool.get("toolUseId") or ""), name=str(tool.get("name") or ""))
                self._has_tools = True
                out += self._begin(data.get("contentBlockIndex"), "tool_use", block)
        elif kind == "contentBlockDelta":
            out += self._delta(data)
        elif kind == "contentBlockStop":
            out += self._close()
        elif kind == "messageStop":
            out += self._close()
            self._stop = stop_reason(data.get("stopReason"), self._has_tools)
        elif kind == "metadata":
            out += self._close()
            out += self._end(decode_usage(data.get("usage")))
        return out

    def finish(self) -> list[StreamEvent]:
        if self._stopped:
            return []
        if self._stop is None:
            raise UpstreamProtocolError("converse stream ended before messageStop")
        return self._end(Usage())  # metadata never came: no usage known

    def _message_start(self) -> MessageStart:
        self._started = True
        return MessageStart(id=response_id(), model=self._model)

    def _begin(self, wire_index: Any, kind: str, block: ContentBlock) -> list[StreamEvent]:
        out = self._close()
        self._index += 1
        self._wire_index, self._open = wire_index, kind
        out.append(BlockStart(index=self._index, block=block))
        return out

    def _close(self) -> list[StreamEvent]:
        if self._open is None:
            return []
        self._open = None
        return [BlockStop(index=self._index)]

    def _delta(self, data: JSON) -> list[StreamEvent]:
        raw = data.get("delta")
        if not isinstance(raw, dict):
            return []
        wire_index = data.get("contentBlockIndex")
        found = _delta(raw)
        if found is None:
            return []  # citations, guard content...: no canonical form
        kind, delta = found
        out: list[StreamEvent] = []
        if self._open is None or wire_index != self._wire_index or kind != self._open:
            if kind == "tool_use":
                raise UpstreamProtocolError("converse stream: tool input before its contentBlockStart")
            opening: ContentBlock = TextBlock(text="") if kind == "text" else ThinkingBlock(origin=WIRE)
            out += self._begin(wire_index, kind, opening)
        out.append(BlockDelta(index=self._index, delta=delta))
        return out

    def _end(self, usage: Usage) -> list[StreamEvent]:
        self._stopped = True
        reason = self._stop if self._stop is not None else ("tool_use" if self._has_tools else "end_turn")
        return [MessageDelta(stop_reason=reason, usage=usage), MessageStop()]


def _delta(raw: JSON) -> tuple[str, Delta] | None:
    text = raw.get("text")
    if isinstance(text, str):
        return "text", TextDelta(text=text)
    tool = raw.get("toolUse")
    if isinstance(tool, dict):
        return "tool_use", InputJsonDelta(partial_json=str(tool.get("input") or ""))
    reasoning = raw.get("reasoningContent")
    if isinstance(reasoning, dict):
        if isinstance(reasoning.get("text"), str):
            return "thinking", ThinkingDelta(thinking=reasoning["text"])
        if isinstance(reasoning.get("signature"), str):
            return "thinking", SignatureDelta(signature=SIGNATURE_PREFIX + reasoning["signature"])
    return None
