"""OpenAI Responses API stream -> canonical stream events, upstream direction.

A streamed call answers semantic SSE events, each a JSON object with a ``type`` (also the SSE
``event:`` name) and a ``sequence_number``, and no ``[DONE]``: the stream ends with
``response.completed``, ``response.incomplete`` or ``response.failed``
(https://platform.openai.com/docs/api-reference/responses-streaming; shapes checked against
``openai.types.responses``). ``ResponsesStreamDecoder`` turns them into events valid under
Anthropic's grammar:

- ``response.created`` / ``in_progress`` / ``queued`` give the id and model. ``MessageStart`` waits
  for the first content (or the end): a failure before any content then raises, so dispatch can
  still fail over to another provider.
- Output items come one after another (``output_index``). A ``message`` item's content parts
  (``content_part.added`` ... ``done``) are text blocks fed by ``output_text.delta`` (``refusal.delta``
  too, stop reason ``refusal``); a ``function_call`` item is a tool_use block opened at
  ``output_item.added`` (it carries ``call_id`` and ``name``) and fed by
  ``function_call_arguments.delta`` through ``ArgumentStream``, so the arguments end as one valid
  JSON object; a ``reasoning`` item is a thinking block fed by ``reasoning_summary_text.delta``
  (``\\n\\n`` between summary parts) or ``reasoning_text.delta``, closed with the wire's signature.
- An item, text part or arguments given only whole (at ``.done``, as some compatible servers do) is
  emitted whole; a terminal event whose response holds output never streamed is emitted from it.
- ``response.completed`` / ``response.incomplete``: stop reason and usage (``response``), then
  ``MessageStop``. ``response.failed`` and ``error`` raise the matching ``UpstreamError`` before any
  content, and become a ``StreamError`` event after.

Unknown events: an event of a documented kind ccrouter does not need (hosted tool progress,
annotations, audio, ``*.done`` that repeat what the deltas gave) is ignored, and so is any event type
we do not know: OpenAI adds event types as it adds features, and the terminal event, not the events
seen, decides whether the answer is complete, so ignoring one can never make a cut answer look
finished. Content for an item that is not a message, function call or reasoning (hosted tools) is
ignored with its item. An item added while another is still open closes the open one (servers that
send no ``output_item.done``). What is refused with ``UpstreamProtocolError``: a frame that is not a
JSON object with a string ``type``; content for an item never added, already done, or of another
kind; an item added or done twice; a stream that ends without a terminal event (``finish``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ccrouter.codecs.events import response_events
from ccrouter.codecs.openai.toolnames import ArgumentStream, ToolNames
from ccrouter.codecs.responses.response import (
    THINKING_SIGNATURE,
    WIRE,
    failure,
    output_blocks,
    reasoning_text,
    stop_reason_for,
    usage_from_responses,
)
from ccrouter.codecs.sse import SSEFrame
from ccrouter.errors import UpstreamProtocolError, anthropic_error_type
from ccrouter.messages import (
    BlockDelta,
    BlockStart,
    BlockStop,
    InputJsonDelta,
    MessageDelta,
    MessagesResponse,
    MessageStart,
    MessageStop,
    SignatureDelta,
    StreamError,
    StreamEvent,
    TextBlock,
    TextDelta,
    ThinkingBlock,
    ThinkingDelta,
    ToolUseBlock,
)

__all__ = ["ResponsesStreamDecoder"]

JSON = dict[str, Any]
_ITEM_KINDS = frozenset({"message", "function_call", "reasoning"})
_TEXT_DELTAS = frozenset({"response.output_text.delta", "response.refusal.delta"})
_TEXT_DONE = {"response.output_text.done": "text", "response.refusal.done": "refusal"}
_THINKING_DELTAS = frozenset({"response.reasoning_summary_text.delta", "response.reasoning_text.delta"})
_TERMINAL = frozenset({"response.completed", "response.incomplete"})


@dataclass(slots=True)
class _Item:
    kind: str  # message, function_call, reasoning, or another item type (ignored)
    done: bool = False
    emitted: bool = False  # some content of it went out
    arguments: ArgumentStream = field(default_factory=ArgumentStream)
    fed: bool = False  # function_call: argument text was fed
    separator: bool = False  # reasoning: a new summary part began after some text


class ResponsesStreamDecoder:
    """Responses API SSE frames -> canonical events (see the module docstring). One per call."""

    def __init__(self, names: ToolNames, *, model: str = "", provider: str = "") -> None:
        self._names = names
        self._model = model
        self._provider = provider
        self._id: str | None = None
        self._started = False
        self._ended = False
        self._index = -1  # index of the last block started
        self._open: str | None = None  # kind of the open block: text, thinking, tool_use
        self._open_item: _Item | None = None  # the item the open block belongs to
        self._items: dict[object, _Item] = {}
        self._current: _Item | None = None  # the item added and not done yet
        self._block_has_text = False  # the open block got some text
        self._tool_use = False
        self._refused = False

    # -- input -----------------------------------------------------------------------------------

    def feed(self, sse: SSEFrame) -> list[StreamEvent]:
        data = sse.data.strip()
        if self._ended or not data or data == b"[DONE]":  # [DONE]: some compatible servers add it
            return []
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise self._protocol_error(f"unreadable stream event ({exc}): {data[:200]!r}") from exc
        if not isinstance(event, dict):
            raise self._protocol_error(f"stream event is not an object: {data[:200]!r}")
        kind = event.get("type", sse.event)
        if not isinstance(kind, str) or not kind:
            raise self._protocol_error(f"stream event without a type: {data[:200]!r}")
        return self._dispatch(kind, event)

    def finish(self) -> list[StreamEvent]:
        """Nothing is owed at the end: a stream that ended before its terminal event was cut."""
        if self._ended:
            return []
        raise self._protocol_error("stream ended before response.completed (truncated)")

    def _dispatch(self, kind: str, event: JSON) -> list[StreamEvent]:
        if kind in ("response.created", "response.in_progress", "response.queued"):
            self._note_response(event.get("response"))
            return []
        if kind == "response.output_item.added":
            return self._item_added(event)
        if kind == "response.output_item.done":
            return self._item_done(event)
        if kind == "response.content_part.added":
            return self._part_added(event)
        if kind == "response.content_part.done":
            return self._part_done(event)
        if kind in _TEXT_DELTAS:
            return self._text(event, kind == "response.refusal.delta")
        if kind in _TEXT_DONE:
            return self._text_done(event, _TEXT_DONE[kind])
        if kind == "response.function_call_arguments.delta":
            return self._arguments(event, event.get("delta"))
        if kind == "response.function_call_arguments.done":
            item = self._content_item(event, "function_call")
            return [] if item is None or item.fed else self._arguments(event, event.get("arguments"))
        if kind == "response.reasoning_summary_part.added":
            item = self._content_item(event, "reasoning")
            if item is not None and item.emitted:
                item.separator = True
            return []
        if kind in _THINKING_DELTAS:
            return self._thinking(event)
        if kind in _TERMINAL:
            return self._complete(event.get("response"))
        if kind == "response.failed":
            response = event.get("response")
            return self._error(response.get("error") if isinstance(response, dict) else None)
        if kind == "error":
            return self._error(event.get("error", event))
        return []  # documented but not needed here, or unknown: ignored (module docstring)

    # -- items -----------------------------------------------------------------------------------

    def _key(self, event: JSON) -> object:
        index, item_id = event.get("output_index"), event.get("item_id")
        if isinstance(index, int) and not isinstance(index, bool):
            return index
        if isinstance(item_id, str) and item_id:
            return item_id
        raise self._protocol_error(f"{event.get('type')} event names no output item")

    def _item_added(self, event: JSON) -> list[StreamEvent]:
        body = event.get("item")
        if not isinstance(body, dict):
            raise self._protocol_error("response.output_item.added without an item")
        key = self._key(event)
        if key in self._items:
            raise self._protocol_error(f"output item {key!r} added twice")
        events = self._end_current()
        item = _Item(kind=str(body.get("type")))
        self._items[key] = item
        self._current = item
        if item.kind == "function_call":
            events += self._open_call(item, body)
        return events

    def _item_done(self, event: JSON) -> list[StreamEvent]:
        body = event.get("item")
        if not isinstance(body, dict):
            raise self._protocol_error("response.output_item.done without an item")
        key = self._key(event)
        item = self._items.get(key)
        events: list[StreamEvent] = []
        if item is None:  # given only whole, without output_item.added
            events += self._end_current()
            item = _Item(kind=str(body.get("type")))
            self._items[key] = item
            self._current = item
            if item.kind == "function_call":
                events += self._open_call(item, body)
        elif item.done:
            raise self._protocol_error(f"output item {key!r} done twice")
        elif item is not self._current:
            raise self._protocol_error(f"output item {key!r} done after a later item began")
        if item.kind == "function_call" and not item.fed:
            events += self._arguments(event, body.get("arguments"), item)
        elif item.kind == "message" and not item.emitted:
            content, refused = output_blocks([body], self._names)
            self._refused = self._refused or refused
            for block in content:
                if isinstance(block, TextBlock):
                    events += self._piece(item, "text", block.text)
                    events += self._close_block()
        elif item.kind == "reasoning" and not item.emitted:
            events += self._piece(item, "thinking", reasoning_text(body))
        return events + self._end_current()

    def _end_current(self) -> list[StreamEvent]:
        """Close the item in progress (its block first)."""
        item = self._current
        if item is None:
            return []
        events = self._close_block() if self._open_item is item else []
        item.done = True
        self._current = None
        return events

    def _content_item(self, event: JSON, kind: str) -> _Item | None:
        """The item a content event belongs to: the one in progress. None: an ignored item's."""
        key = self._key(event)
        item = self._items.get(key)
        if item is None:
            raise self._protocol_error(f"{event.get('type')} for output item {key!r}, never added")
        if item.done:
            raise self._protocol_error(f"{event.get('type')} for output item {key!r}, already done")
        if item.kind not in _ITEM_KINDS:
            return None
        if item.kind != kind:
            raise self._protocol_error(f"{event.get('type')} for a {item.kind} item")
        return item

    # -- content ---------------------------------------------------------------------------------

    def _part_added(self, event: JSON) -> list[StreamEvent]:
        part = event.get("part")
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "reasoning_text":
            self._content_item(event, "reasoning")
            return []
        item = self._content_item(event, "message")
        if item is None or kind not in ("output_text", "refusal"):
            return []
        events = self._close_block() if self._open_item is item else []
        self._refused = self._refused or kind == "refusal"
        text = part.get("text") or part.get("refusal") if isinstance(part, dict) else None
        return events + self._piece(item, "text", text if isinstance(text, str) else "", force=True)

    def _part_done(self, event: JSON) -> list[StreamEvent]:
        part = event.get("part")
        if isinstance(part, dict) and part.get("type") == "reasoning_text":
            return []
        item = self._content_item(event, "message")
        return self._close_block() if item is not None and self._open_item is item else []

    def _text(self, event: JSON, refusal: bool) -> list[StreamEvent]:
        item = self._content_item(event, "message")
        delta = event.get("delta")
        if item is None or not isinstance(delta, str) or not delta:
            return []
        self._refused = self._refused or refusal
        return self._piece(item, "text", delta)

    def _text_done(self, event: JSON, key: str) -> list[StreamEvent]:
        """The whole text of a part: emitted only when no delta gave it."""
        item = self._content_item(event, "message")
        text = event.get(key)
        if item is None or (self._open_item is item and self._block_has_text) or not isinstance(text, str):
            return []
        return self._piece(item, "text", text) if text else []

    def _thinking(self, event: JSON) -> list[StreamEvent]:
        item = self._content_item(event, "reasoning")
        delta = event.get("delta")
        if item is None or not isinstance(delta, str) or not delta:
            return []
        if item.separator:
            item.separator = False
            delta = "\n\n" + delta
        return self._piece(item, "thinking", delta)

    def _open_call(self, item: _Item, body: JSON) -> list[StreamEvent]:
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise self._protocol_error("function_call item without a name")
        call_id = body.get("call_id")
        events = self._close_block() + self._start()
        self._index += 1
        self._open, self._open_item = "tool_use", item
        item.emitted = True
        self._tool_use = True
        names = self._names
        block = ToolUseBlock(
            id=names.from_wire_id(call_id if isinstance(call_id, str) else None),
            name=names.from_wire_name(name),
        )
        return [*events, BlockStart(index=self._index, block=block)]

    def _arguments(self, event: JSON, fragment: object, item: _Item | None = None) -> list[StreamEvent]:
        if item is None:
            item = self._content_item(event, "function_call")
            if item is None:
                return []
        if self._open_item is not item:
            raise self._protocol_error("function call arguments after the call's block was closed")
        if not isinstance(fragment, str) or not fragment:
            return []
        item.fed = True
        forwarded = item.arguments.feed(fragment)
        return (
            [BlockDelta(index=self._index, delta=InputJsonDelta(partial_json=forwarded))] if forwarded else []
        )

    # -- blocks ----------------------------------------------------------------------------------

    def _piece(self, item: _Item, kind: str, text: str, *, force: bool = False) -> list[StreamEvent]:
        """``text`` for ``item``'s open block of ``kind``, opening it first if needed (``force``: a
        new content part opens its block even when empty)."""
        if not text and not force:
            return []
        events: list[StreamEvent] = []
        if self._open_item is not item or self._open != kind:
            events += self._close_block() + self._start()
            self._index += 1
            self._open, self._open_item = kind, item
            self._block_has_text = False
            block = ThinkingBlock(origin=WIRE) if kind == "thinking" else TextBlock(text="")
            events.append(BlockStart(index=self._index, block=block))
        item.emitted = True
        if text:
            self._block_has_text = True
            delta = ThinkingDelta(thinking=text) if kind == "thinking" else TextDelta(text=text)
            events.append(BlockDelta(index=self._index, delta=delta))
        return events

    def _close_block(self) -> list[StreamEvent]:
        if self._open is None:
            return []
        events: list[StreamEvent] = []
        if self._open == "thinking":
            events.append(BlockDelta(index=self._index, delta=SignatureDelta(signature=THINKING_SIGNATURE)))
        elif self._open == "tool_use" and self._open_item is not None:
            tail = self._open_item.arguments.close()
            if tail:
                events.append(BlockDelta(index=self._index, delta=InputJsonDelta(partial_json=tail)))
        events.append(BlockStop(index=self._index))
        self._open, self._open_item = None, None
        return events

    # -- message ---------------------------------------------------------------------------------

    def _note_response(self, response: object) -> None:
        if not isinstance(response, dict):
            return
        if isinstance(response.get("id"), str) and response["id"] and self._id is None:
            self._id = response["id"]
        if isinstance(response.get("model"), str) and response["model"]:
            self._model = response["model"]

    def _start(self) -> list[StreamEvent]:
        if self._started:
            return []
        self._started = True
        return [MessageStart(id=self._id or self._names.fresh_id("msg"), model=self._model)]

    def _complete(self, response: object) -> list[StreamEvent]:
        response = response if isinstance(response, dict) else {}
        self._note_response(response)
        events = self._end_current()
        output = response.get("output")
        if self._index < 0 and isinstance(output, list) and output:
            # Nothing streamed but the response holds output: a server that sends it only at the end.
            content, refused = output_blocks(output, self._names)
            self._refused = self._refused or refused
            self._tool_use = any(isinstance(block, ToolUseBlock) for block in content)
            whole = response_events(MessagesResponse(id="", model="", content=content))
            events += self._start() + whole[1:-2]
        events += self._start()
        stop_reason = stop_reason_for(response, tool_use=self._tool_use, refused=self._refused)
        usage = usage_from_responses(response.get("usage"))
        events += [MessageDelta(stop_reason=stop_reason, usage=usage), MessageStop()]
        self._ended = True
        return events

    def _error(self, error: object) -> list[StreamEvent]:
        exc = failure(error, self._provider)
        if not self._started:
            raise exc
        self._ended = True
        return [
            *self._close_block(),
            StreamError(error_type=anthropic_error_type(exc.status), message=exc.message),
        ]

    def _protocol_error(self, message: str) -> UpstreamProtocolError:
        text = f"{self._provider}: {message}" if self._provider else message
        return UpstreamProtocolError(text, provider=self._provider)
