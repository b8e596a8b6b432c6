"""Canonical stream events -> ``streamGenerateContent`` chunks for a Gemini client.

Each chunk is a whole ``GenerateContentResponse`` holding the new parts only: one per text or thought
delta, one per function call (complete, once its block ends: Gemini never splits a call). The last
chunk carries ``finishReason`` and ``usageMetadata``. Thought signatures go on the part after the
thinking block they sign, as ``front.encode_response`` does.

Two framings: ``?alt=sse`` (what Gemini CLI and the SDKs ask for) writes each chunk as an SSE
``data:`` line; without it Gemini streams one JSON array, ``[{...},\\r\\n{...}]``, written here as it
goes. A failure after the first byte is one more chunk, Google's ``{"error": {...}}`` envelope,
which the SDKs raise as an APIError; the array is then closed.
"""

from __future__ import annotations

from typing import Any

import orjson

from ccrouter.codecs.gemini.front import (
    error_envelope_for_type,
    finish_reason,
    response_id,
    signature_for,
    usage_metadata,
)
from ccrouter.codecs.sse import frame
from ccrouter.messages import (
    BlockDelta,
    BlockStart,
    BlockStop,
    InputJsonDelta,
    MessageDelta,
    MessageStart,
    MessageStop,
    SignatureDelta,
    StopReason,
    StreamError,
    StreamEvent,
    TextDelta,
    ThinkingBlock,
    ThinkingDelta,
    ToolUseBlock,
    Usage,
)

__all__ = ["GeminiFrontStreamEncoder"]

JSON = dict[str, object]


class GeminiFrontStreamEncoder:
    """One client stream's encoder: ``encode`` each event; the last (``MessageStop`` or a
    ``StreamError``) ends the framing too."""

    __slots__ = (
        "_array",
        "_calls",
        "_id",
        "_model",
        "_pending",
        "_sent",
        "_start_usage",
        "_stop",
        "_thinking",
        "_thoughts",
        "_usage",
    )

    def __init__(self, model: str, *, thoughts: bool = False, sse: bool = True) -> None:
        self._model = model
        self._thoughts = thoughts
        self._array = not sse
        self._sent = False  # a chunk went out (array framing: the next one needs a comma)
        self._id = ""
        self._pending: str | None = None  # a thought signature waiting for the next part
        self._calls: dict[int, tuple[ToolUseBlock, list[str]]] = {}  # block index -> call, its JSON
        self._thinking: dict[int, ThinkingBlock] = {}
        self._start_usage = Usage()
        self._usage = Usage()
        self._stop: StopReason | None = "end_turn"

    @property
    def content_type(self) -> str:
        return "application/json; charset=utf-8" if self._array else "text/event-stream; charset=utf-8"

    def encode(self, event: StreamEvent) -> bytes:
        match event:
            case MessageStart():
                self._id = response_id(event.id)
                self._start_usage = event.usage
            case BlockStart(block=ToolUseBlock() as block):
                self._calls[event.index] = (block, [])
            case BlockStart(block=ThinkingBlock() as block):
                self._thinking[event.index] = ThinkingBlock(
                    thinking=block.thinking,
                    signature=block.signature,
                    redacted=block.redacted,
                    data=block.data,
                    origin=block.origin,
                )
            case BlockDelta(delta=TextDelta() as delta) if delta.text:
                return self._parts([self._signed({"text": delta.text})])
            case BlockDelta(delta=ThinkingDelta() as delta):
                return self._thought(event.index, delta.thinking)
            case BlockDelta(delta=SignatureDelta() as delta) if event.index in self._thinking:
                self._thinking[event.index].signature = delta.signature
            case BlockDelta(delta=InputJsonDelta() as delta) if event.index in self._calls:
                self._calls[event.index][1].append(delta.partial_json)
            case BlockStop():
                return self._stop_block(event.index)
            case MessageDelta():
                self._stop = event.stop_reason
                self._usage = event.usage
            case MessageStop():
                # The stream's last event: the array (if any) is closed with it.
                finish = self._finish()
                return finish + b"]" if self._array else finish
            case StreamError():
                # The stream's last write (``api.common``): the array is closed with it.
                error = self._chunk(error_envelope_for_type(event.error_type, event.message))
                return error + b"]" if self._array else error
        return b""  # pings, empty deltas: nothing to say in Gemini's format

    # ----------------------------------------------------------------------- internals

    def _thought(self, index: int, text: str) -> bytes:
        block = self._thinking.get(index)
        if block is not None:
            block.thinking += text
        if not (self._thoughts and text):
            return b""
        return self._parts([{"text": text, "thought": True}])

    def _stop_block(self, index: int) -> bytes:
        thinking = self._thinking.pop(index, None)
        if thinking is not None:
            self._pending = signature_for(thinking) or self._pending
            return b""
        opened = self._calls.pop(index, None)
        if opened is None:
            return b""
        block, pieces = opened
        arguments = "".join(pieces)
        try:
            args = orjson.loads(arguments) if arguments else block.input
        except orjson.JSONDecodeError:
            args = {}
        call = {"id": block.id, "name": block.name, "args": args if isinstance(args, dict) else {}}
        return self._parts([self._signed({"functionCall": call})])

    def _signed(self, part: JSON) -> JSON:
        if self._pending is not None:
            part["thoughtSignature"] = self._pending
            self._pending = None
        return part

    def _finish(self) -> bytes:
        start, final = self._start_usage, self._usage
        # message_delta usage is cumulative but may omit the input counts message_start gave.
        usage = Usage(
            input_tokens=final.input_tokens or start.input_tokens,
            output_tokens=final.output_tokens or start.output_tokens,
            cache_read_input_tokens=final.cache_read_input_tokens or start.cache_read_input_tokens,
            cache_creation_input_tokens=(
                final.cache_creation_input_tokens or start.cache_creation_input_tokens
            ),
        )
        parts = [] if self._pending is None else [self._signed({"text": ""})]
        body = self._response(parts)
        body["candidates"][0]["finishReason"] = finish_reason(self._stop)
        body["usageMetadata"] = usage_metadata(usage)
        return self._chunk(body)

    def _parts(self, parts: list[JSON]) -> bytes:
        return self._chunk(self._response(parts))

    def _response(self, parts: list[JSON]) -> dict[str, Any]:
        return {
            "candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}],
            "modelVersion": self._model,
            "responseId": self._id,
        }

    def _chunk(self, body: object) -> bytes:
        data = orjson.dumps(body)
        if not self._array:
            return frame(data)
        lead = b",\r\n" if self._sent else b"["
        self._sent = True
        return lead + data
