"""Anthropic Messages streaming: SSE frames <-> canonical stream events, plus the pieces shared with
the non-streamed codec in ``ccrouter.codecs.anthropic.codec`` (block and usage encoding, error envelope,
thinking origin).

The stream grammar (https://docs.anthropic.com/en/docs/build-with-claude/streaming): ``message_start``,
then per block ``content_block_start`` / ``content_block_delta``* / ``content_block_stop``, then
``message_delta`` (stop reason, cumulative usage) and ``message_stop``; ``ping`` anywhere; ``error``
ends the stream. Decoded events keep the frame's bytes in ``raw`` so an Anthropic front forwards them
untouched; ``encode_event`` only serialises events that came from another wire format.
"""

from __future__ import annotations

from typing import Any, cast

import orjson

from ccrouter.codecs import sse
from ccrouter.codecs.ids import ANTHROPIC_ID_PREFIX, client_id
from ccrouter.errors import UpstreamProtocolError
from ccrouter.messages import (
    BlockDelta,
    BlockStart,
    BlockStop,
    ContentBlock,
    Delta,
    ImageBlock,
    InputJsonDelta,
    MessageDelta,
    MessageStart,
    MessageStop,
    OtherBlock,
    Ping,
    SignatureDelta,
    StopReason,
    StreamError,
    StreamEvent,
    TextBlock,
    TextDelta,
    ThinkingBlock,
    ThinkingDelta,
    ToolReferenceBlock,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)

__all__ = [
    "AnthropicStreamDecoder",
    "decode_usage",
    "encode_block",
    "encode_event",
    "encode_usage",
    "error_body",
    "thinking_origin",
]

JSON = dict[str, Any]
_SIGNATURE_PREFIX = "ccr:"


def thinking_origin(signature: str | None) -> str:
    """The wire format that produced a thinking block: ``ccr:<wire>[:payload]`` marks foreign ones."""
    if signature and signature.startswith(_SIGNATURE_PREFIX):
        return signature[len(_SIGNATURE_PREFIX) :].partition(":")[0] or "unknown"
    return "anthropic"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def decode_usage(raw: Any) -> Usage:
    """Anthropic usage -> canonical; missing or null counts become 0."""
    if not isinstance(raw, dict):
        return Usage()
    return Usage(
        input_tokens=_int(raw.get("input_tokens")),
        output_tokens=_int(raw.get("output_tokens")),
        cache_read_input_tokens=_int(raw.get("cache_read_input_tokens")),
        cache_creation_input_tokens=_int(raw.get("cache_creation_input_tokens")),
    )


def encode_usage(usage: Usage) -> JSON:
    # Key order as Anthropic's API sends it.
    return {
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "output_tokens": usage.output_tokens,
    }


def error_body(error_type: str, message: str) -> bytes:
    """Anthropic's error envelope, used for HTTP error bodies and SSE ``error`` events alike."""
    return orjson.dumps({"type": "error", "error": {"type": error_type, "message": message}})


# --------------------------------------------------------------------------- decoding


def _start_block(raw: JSON) -> ContentBlock:
    """The opening state of a streamed block; blocks we do not model arrive as ``OtherBlock``."""
    kind = raw.get("type")
    if kind == "text":
        return TextBlock(text=raw.get("text") or "")
    if kind == "tool_use":
        tool_input = raw.get("input")
        return ToolUseBlock(
            id=raw.get("id") or "",
            name=raw.get("name") or "",
            input=tool_input if isinstance(tool_input, dict) else {},
        )
    if kind == "thinking":
        signature = raw.get("signature") or None
        return ThinkingBlock(
            thinking=raw.get("thinking") or "", signature=signature, origin=thinking_origin(signature)
        )
    if kind == "redacted_thinking":
        return ThinkingBlock(redacted=True, data=raw.get("data"))
    return OtherBlock(raw=raw)


def _delta(raw: Any) -> Delta | None:
    if not isinstance(raw, dict):
        return None
    kind = raw.get("type")
    if kind == "text_delta":
        return TextDelta(text=raw.get("text") or "")
    if kind == "input_json_delta":
        return InputJsonDelta(partial_json=raw.get("partial_json") or "")
    if kind == "thinking_delta":
        return ThinkingDelta(thinking=raw.get("thinking") or "")
    if kind == "signature_delta":
        return SignatureDelta(signature=raw.get("signature") or "")
    return None


def _merge_usage(start: Usage, final: Usage) -> Usage:
    """message_delta usage is cumulative but older API versions omit the input counts."""
    return Usage(
        input_tokens=final.input_tokens or start.input_tokens,
        output_tokens=final.output_tokens or start.output_tokens,
        cache_read_input_tokens=final.cache_read_input_tokens or start.cache_read_input_tokens,
        cache_creation_input_tokens=final.cache_creation_input_tokens or start.cache_creation_input_tokens,
    )


class AnthropicStreamDecoder:
    """Upstream Anthropic SSE frames -> canonical events (each keeps ``raw=frame.raw``)."""

    __slots__ = ("_ended", "_start_usage")

    def __init__(self) -> None:
        self._start_usage = Usage()
        self._ended = False

    def feed(self, frame: sse.SSEFrame) -> list[StreamEvent]:
        if not frame.data:
            return []
        try:
            data = orjson.loads(frame.data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamProtocolError(
                f"anthropic stream: invalid JSON in {frame.event or 'data'} frame"
            ) from exc
        if not isinstance(data, dict):
            raise UpstreamProtocolError("anthropic stream: frame data is not a JSON object")
        event = self._event(frame.event or data.get("type"), data, frame.raw)
        return [] if event is None else [event]

    def _event(self, kind: Any, data: JSON, raw: bytes) -> StreamEvent | None:
        if kind == "content_block_delta":
            delta = _delta(data.get("delta"))
            if delta is None:
                # citations_delta and newer kinds have no canonical form. Sent on as a Ping that keeps
                # the frame: an Anthropic front forwards the bytes, other fronts ignore pings.
                return Ping(raw=raw)
            return BlockDelta(index=_int(data.get("index")), delta=delta, raw=raw)
        if kind == "content_block_start":
            block = data.get("content_block")
            if not isinstance(block, dict):
                raise UpstreamProtocolError("anthropic stream: content_block_start without content_block")
            return BlockStart(index=_int(data.get("index")), block=_start_block(block), raw=raw)
        if kind == "content_block_stop":
            return BlockStop(index=_int(data.get("index")), raw=raw)
        if kind == "message_start":
            message = data.get("message")
            if not isinstance(message, dict):
                raise UpstreamProtocolError("anthropic stream: message_start without message")
            self._start_usage = decode_usage(message.get("usage"))
            return MessageStart(
                id=message.get("id") or "", model=message.get("model") or "", usage=self._start_usage, raw=raw
            )
        if kind == "message_delta":
            changes = data.get("delta")
            changes = changes if isinstance(changes, dict) else {}
            return MessageDelta(
                stop_reason=cast("StopReason | None", changes.get("stop_reason")),
                stop_sequence=changes.get("stop_sequence"),
                usage=_merge_usage(self._start_usage, decode_usage(data.get("usage"))),
                raw=raw,
            )
        if kind == "message_stop":
            self._ended = True
            return MessageStop(raw=raw)
        if kind == "ping":
            return Ping(raw=raw)
        if kind == "error":
            self._ended = True
            error = data.get("error")
            error = error if isinstance(error, dict) else {}
            return StreamError(
                error_type=str(error.get("type") or "api_error"),
                message=str(error.get("message") or "upstream stream error"),
                raw=raw,
            )
        return None  # unknown event types are ignored, as Anthropic's versioning policy asks

    def finish(self) -> list[StreamEvent]:
        if not self._ended:
            raise UpstreamProtocolError("anthropic stream ended before message_stop")
        return []


# --------------------------------------------------------------------------- encoding


def encode_block(block: ContentBlock | ToolReferenceBlock) -> JSON:
    """A canonical block as Anthropic writes it. Thinking of a foreign origin keeps (or gets) its
    ``ccr:<wire>`` signature so it comes back to us recognisable."""
    if isinstance(block, TextBlock):
        out: JSON = {"type": "text", "text": block.text}
    elif isinstance(block, ToolUseBlock):
        out = {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    elif isinstance(block, ThinkingBlock):
        if block.redacted:
            return {"type": "redacted_thinking", "data": block.data or ""}
        signature = block.signature or (
            "" if block.origin == "anthropic" else _SIGNATURE_PREFIX + block.origin
        )
        return {"type": "thinking", "thinking": block.thinking, "signature": signature}
    elif isinstance(block, ImageBlock):
        out = {"type": "image", "source": _image_source(block)}
    elif isinstance(block, ToolResultBlock):
        out = {"type": "tool_result", "tool_use_id": block.tool_use_id}
        if block.content:  # optional on the wire; an empty result is sent without it
            out["content"] = [encode_block(part) for part in block.content]
        if block.is_error:
            out["is_error"] = True
    elif isinstance(block, ToolReferenceBlock):
        out = {"type": "tool_reference", "tool_name": block.tool_name}
    else:
        return block.raw
    if block.cache_control is not None:
        out["cache_control"] = block.cache_control
    return out


def _image_source(block: ImageBlock) -> JSON:
    if block.data is None and block.url is not None:
        return {"type": "url", "url": block.url}
    return {"type": "base64", "media_type": block.media_type or "image/png", "data": block.data or ""}


def _start_block_json(block: ContentBlock) -> JSON:
    # A thinking block opens with an empty signature: the signature arrives as a signature_delta.
    if isinstance(block, ThinkingBlock) and not block.redacted:
        return {"type": "thinking", "thinking": block.thinking, "signature": ""}
    return encode_block(block)


def _delta_json(delta: Delta) -> JSON:
    if isinstance(delta, TextDelta):
        return {"type": "text_delta", "text": delta.text}
    if isinstance(delta, InputJsonDelta):
        return {"type": "input_json_delta", "partial_json": delta.partial_json}
    if isinstance(delta, ThinkingDelta):
        return {"type": "thinking_delta", "thinking": delta.thinking}
    return {"type": "signature_delta", "signature": delta.signature}


def _event_json(event: StreamEvent) -> tuple[str, JSON]:
    if isinstance(event, BlockDelta):
        return "content_block_delta", {
            "type": "content_block_delta",
            "index": event.index,
            "delta": _delta_json(event.delta),
        }
    if isinstance(event, BlockStart):
        return "content_block_start", {
            "type": "content_block_start",
            "index": event.index,
            "content_block": _start_block_json(event.block),
        }
    if isinstance(event, BlockStop):
        return "content_block_stop", {"type": "content_block_stop", "index": event.index}
    if isinstance(event, MessageStart):
        message: JSON = {
            "id": client_id(event.id, ANTHROPIC_ID_PREFIX),
            "type": "message",
            "role": "assistant",
            "model": event.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": encode_usage(event.usage),
        }
        return "message_start", {"type": "message_start", "message": message}
    if isinstance(event, MessageDelta):
        return "message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": event.stop_reason, "stop_sequence": event.stop_sequence},
            "usage": encode_usage(event.usage),
        }
    if isinstance(event, MessageStop):
        return "message_stop", {"type": "message_stop"}
    if isinstance(event, Ping):
        return "ping", {"type": "ping"}
    return "error", {"type": "error", "error": {"type": event.error_type, "message": event.message}}


# Most frames of a translated stream are text deltas: written from a template, the same bytes as
# ``sse.frame(orjson.dumps(...))`` gives for them (a test compares the two).
_TEXT_DELTA_FRAME = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
    b'"delta":{"type":"text_delta","text":%b}}\n\n'
)


def encode_event(event: StreamEvent) -> bytes:
    """One SSE frame as Anthropic sends it; an upstream Anthropic frame is forwarded byte for byte."""
    if event.raw is not None:
        return event.raw
    if type(event) is BlockDelta and type(event.delta) is TextDelta:
        return _TEXT_DELTA_FRAME % (event.index, orjson.dumps(event.delta.text))
    name, data = _event_json(event)
    return sse.frame(orjson.dumps(data), name)
