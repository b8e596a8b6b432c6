"""Canonical stream events -> the Responses API's SSE events, for a client of ``POST /v1/responses``.

Each frame is ``event: <type>`` with a JSON ``data`` carrying the same ``type`` and a
``sequence_number`` counted from 0. The order is OpenAI's
(https://platform.openai.com/docs/api-reference/responses-streaming):
``response.created``, ``response.in_progress``, then per canonical block one output item
(``response.output_item.added`` ... ``response.output_item.done``: a message with one
``output_text`` part, a ``function_call``, or a ``reasoning`` item with one summary part), and last
``response.completed`` or ``response.incomplete`` carrying the whole Response. An error after the
start is an ``error`` event followed by ``response.failed``; there is no ``[DONE]``. The OpenAI SDK's
stream helper (``client.responses.stream``) checks this grammar: items open before their deltas,
ids that stay the same.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from ccrouter.codecs.ids import RESPONSE_ID_PREFIX, client_id
from ccrouter.codecs.responses.front import (
    function_call_item,
    incomplete_details,
    item_ids,
    reasoning_item,
    response_shell,
    status_for,
    tool_namespaces,
    usage_to_responses,
)
from ccrouter.messages import (
    BlockDelta,
    BlockStart,
    BlockStop,
    InputJsonDelta,
    MessageDelta,
    MessagesRequest,
    MessageStart,
    MessageStop,
    SignatureDelta,
    StopReason,
    StreamError,
    StreamEvent,
    TextBlock,
    TextDelta,
    ThinkingBlock,
    ThinkingDelta,
    ToolUseBlock,
    Usage,
)

__all__ = ["ResponsesStreamEncoder"]

JSON = dict[str, Any]
# ResponseError.code is a closed list in the SDK: a rate limit, or a server error.
_ERROR_CODES = {"rate_limit_error": "rate_limit_exceeded"}


@dataclass(slots=True)
class _Item:
    """An output item being streamed (one canonical block)."""

    kind: str  # "message" | "function_call" | "reasoning"
    output_index: int
    item_id: str
    pieces: list[str] = field(default_factory=list)
    call_id: str = ""
    name: str = ""
    signature: str | None = None
    origin: str = "anthropic"
    part_open: bool = False  # reasoning: the summary part was announced

    @property
    def text(self) -> str:
        return "".join(self.pieces)


class ResponsesStreamEncoder:
    """Canonical events -> Responses SSE events. ``raw`` on events is ignored (upstream bytes)."""

    def __init__(self, request: MessagesRequest, *, created_at: int | None = None) -> None:
        self._request = request
        self._namespaces = tool_namespaces(request)
        self._created = int(time.time()) if created_at is None else created_at
        self._id = RESPONSE_ID_PREFIX + secrets.token_hex(12)
        self._sequence = 0
        self._started = False
        self._finished = False
        self._items: dict[int, _Item] = {}  # canonical block index -> open item
        self._output: list[JSON] = []  # every item, as last announced (done ones complete)
        self._stop_reason: StopReason | None = None
        self._start_usage = Usage()
        self._usage = Usage()

    def encode(self, event: StreamEvent) -> bytes:
        if self._finished:
            return b""
        match event:
            case MessageStart():
                self._id = client_id(event.id, RESPONSE_ID_PREFIX)
                self._start_usage = event.usage
                return self._start()
            case BlockStart():
                return self._open(event)
            case BlockDelta() if event.index in self._items:
                return self._delta(self._items[event.index], event)
            case BlockStop() if event.index in self._items:
                return self._close(self._items.pop(event.index))
            case MessageDelta():
                self._stop_reason = event.stop_reason
                self._usage = event.usage
            case MessageStop():
                return self._complete()
            case StreamError():
                return self._fail(event)
        return b""  # pings, blocks we do not show (redacted thinking, server tools)

    # ------------------------------------------------------------------ frames

    def _frame(self, kind: str, payload: JSON) -> bytes:
        data = {"type": kind, "sequence_number": self._sequence, **payload}
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    def _response(self, status: str) -> JSON:
        return response_shell(self._request, self._id, self._created, status)

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        shell = self._response("in_progress")
        return self._frame("response.created", {"response": shell}) + self._frame(
            "response.in_progress", {"response": shell}
        )

    # ------------------------------------------------------------------ items

    def _open(self, event: BlockStart) -> bytes:
        block = event.block
        out = self._start()
        index = len(self._output)
        message_id, call_id, reasoning_id = item_ids(self._id, index)
        if isinstance(block, TextBlock):
            item = _Item("message", index, message_id)
            added: JSON = {
                "type": "message",
                "id": message_id,
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
        elif isinstance(block, ToolUseBlock):
            item = _Item("function_call", index, call_id, call_id=block.id, name=block.name)
            added = self._call(item, "", "in_progress")
        elif isinstance(block, ThinkingBlock) and not block.redacted:
            item = _Item("reasoning", index, reasoning_id, signature=block.signature, origin=block.origin)
            added = {"type": "reasoning", "id": reasoning_id, "summary": [], "status": "in_progress"}
        else:
            return out
        self._items[event.index] = item
        self._output.append(added)
        out += self._frame("response.output_item.added", {"output_index": index, "item": added})
        if isinstance(block, TextBlock):
            out += self._frame("response.content_part.added", {**self._where(item), "part": _part("")})
            if block.text:
                out += self._text_delta(item, block.text)
        elif isinstance(block, ToolUseBlock) and block.input:
            # A block may open with its whole input, no deltas following.
            out += self._arguments_delta(item, orjson.dumps(block.input).decode())
        elif isinstance(block, ThinkingBlock) and block.thinking:
            out += self._summary_delta(item, block.thinking)
        return out

    def _delta(self, item: _Item, event: BlockDelta) -> bytes:
        delta = event.delta
        if isinstance(delta, TextDelta) and item.kind == "message" and delta.text:
            return self._text_delta(item, delta.text)
        if isinstance(delta, InputJsonDelta) and item.kind == "function_call" and delta.partial_json:
            return self._arguments_delta(item, delta.partial_json)
        if isinstance(delta, ThinkingDelta) and item.kind == "reasoning" and delta.thinking:
            return self._summary_delta(item, delta.thinking)
        if isinstance(delta, SignatureDelta) and item.kind == "reasoning":
            item.signature = (item.signature or "") + delta.signature
        return b""

    def _text_delta(self, item: _Item, text: str) -> bytes:
        item.pieces.append(text)
        payload = {**self._where(item), "delta": text, "logprobs": []}
        return self._frame("response.output_text.delta", payload)

    def _arguments_delta(self, item: _Item, arguments: str) -> bytes:
        item.pieces.append(arguments)
        payload = {"item_id": item.item_id, "output_index": item.output_index, "delta": arguments}
        return self._frame("response.function_call_arguments.delta", payload)

    def _summary_delta(self, item: _Item, text: str) -> bytes:
        out = b""
        if not item.part_open:
            item.part_open = True
            part = {"type": "summary_text", "text": ""}
            out = self._frame("response.reasoning_summary_part.added", {**self._summary(item), "part": part})
        item.pieces.append(text)
        return out + self._frame(
            "response.reasoning_summary_text.delta", {**self._summary(item), "delta": text}
        )

    def _close(self, item: _Item) -> bytes:
        out = b""
        if item.kind == "message":
            text = item.text
            out += self._frame(
                "response.output_text.done", {**self._where(item), "text": text, "logprobs": []}
            )
            out += self._frame("response.content_part.done", {**self._where(item), "part": _part(text)})
            done: JSON = {
                "type": "message",
                "id": item.item_id,
                "status": "completed",
                "role": "assistant",
                "content": [_part(text)],
            }
        elif item.kind == "function_call":
            if not item.pieces:  # a call without arguments: "{}", streamed like any other
                out += self._arguments_delta(item, "{}")
            arguments = item.text
            payload = {"item_id": item.item_id, "output_index": item.output_index, "arguments": arguments}
            out += self._frame("response.function_call_arguments.done", payload)
            done = self._call(item, arguments, "completed")
        else:
            text = item.text
            if item.part_open:
                part = {"type": "summary_text", "text": text}
                out += self._frame(
                    "response.reasoning_summary_text.done", {**self._summary(item), "text": text}
                )
                out += self._frame(
                    "response.reasoning_summary_part.done", {**self._summary(item), "part": part}
                )
            block = ThinkingBlock(thinking=text, signature=item.signature, origin=item.origin)
            done = reasoning_item(item.item_id, block)
        self._output[item.output_index] = done
        return out + self._frame(
            "response.output_item.done", {"output_index": item.output_index, "item": done}
        )

    def _call(self, item: _Item, arguments: str, status: str) -> JSON:
        block = ToolUseBlock(id=item.call_id, name=item.name)
        return function_call_item(item.item_id, block, arguments, status, self._namespaces)

    @staticmethod
    def _where(item: _Item) -> JSON:
        return {"item_id": item.item_id, "output_index": item.output_index, "content_index": 0}

    @staticmethod
    def _summary(item: _Item) -> JSON:
        return {"item_id": item.item_id, "output_index": item.output_index, "summary_index": 0}

    # ------------------------------------------------------------------ the end

    def _complete(self) -> bytes:
        out = self._start()
        for index in sorted(self._items):  # blocks never stopped: closed as they stand
            out += self._close(self._items.pop(index))
        self._finished = True
        status = status_for(self._stop_reason)
        response = self._response(status)
        response["incomplete_details"] = incomplete_details(self._stop_reason)
        response["output"] = self._output
        response["usage"] = usage_to_responses(self._final_usage())
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return out + self._frame(kind, {"response": response})

    def _final_usage(self) -> Usage:
        # message_delta usage is cumulative but may omit the input counts message_start gave.
        start, final = self._start_usage, self._usage
        return Usage(
            input_tokens=final.input_tokens or start.input_tokens,
            output_tokens=final.output_tokens or start.output_tokens,
            cache_read_input_tokens=final.cache_read_input_tokens or start.cache_read_input_tokens,
            cache_creation_input_tokens=(
                final.cache_creation_input_tokens or start.cache_creation_input_tokens
            ),
        )

    def _fail(self, event: StreamError) -> bytes:
        out = self._start()  # the SDK reads nothing before response.created
        self._finished = True
        code = _ERROR_CODES.get(event.error_type, "server_error")
        out += self._frame("error", {"code": code, "message": event.message, "param": None})
        response = self._response("failed")
        response["error"] = {"code": code, "message": event.message}
        response["output"] = self._output
        return out + self._frame("response.failed", {"response": response})


def _part(text: str) -> JSON:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
