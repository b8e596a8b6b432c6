"""OpenAI chat-completion streams <-> canonical stream events.

``OpenAIStreamDecoder`` reads an upstream ``chat.completion.chunk`` stream into events that are valid
under Anthropic's stream grammar (message_start first, blocks strictly one after another, thinking
closed by a signature, message_delta with the final usage, message_stop). ``OpenAIStreamEncoder``
writes canonical events as chunks for an OpenAI client.
Reference: https://platform.openai.com/docs/api-reference/chat-streaming

The decoder sets no ``raw`` on its events: one upstream chunk becomes several events, and an
OpenAI front encoder serialises again (it must rename tools and models anyway).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from ccrouter.codecs.ids import OPENAI_ID_PREFIX, client_id
from ccrouter.codecs.openai.chat import (
    THINKING_SIGNATURE,
    Dialect,
    error_body,
    error_status,
    finish_reason_for,
    matched_stop,
    stop_reason_for,
    usage_from_openai,
    usage_to_openai,
)
from ccrouter.codecs.openai.toolnames import ArgumentStream, ToolNames
from ccrouter.codecs.sse import SSEFrame, frame
from ccrouter.errors import UpstreamProtocolError, anthropic_error_type, upstream_error_for_status
from ccrouter.messages import (
    BlockDelta,
    BlockStart,
    BlockStop,
    InputJsonDelta,
    MessageDelta,
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
    Usage,
)

__all__ = ["OpenAIStreamDecoder", "OpenAIStreamEncoder", "ThinkSplitter"]

JSON = dict[str, Any]
_OPEN, _CLOSE = "<think>", "</think>"


class ThinkSplitter:
    """Splits streamed content into ("thinking" | "text", piece) when it starts with a ``<think>``
    section; tags may be cut anywhere across chunks, so undecidable tails are held back."""

    __slots__ = ("_buffer", "_state")

    def __init__(self) -> None:
        self._state = "start"  # start -> think -> after -> text, or start -> text
        self._buffer = ""

    @property
    def in_text(self) -> bool:
        """Past any ``<think>`` section: content passes through as text."""
        return self._state == "text"

    def feed(self, text: str) -> list[tuple[str, str]]:
        if self._state == "text":
            return [("text", text)]
        if self._state == "after":  # drop the blank lines models put after </think>
            text = text.lstrip()
            if not text:
                return []
            self._state = "text"
            return [("text", text)]
        self._buffer += text
        if self._state == "start":
            head = self._buffer.lstrip()
            if head.startswith(_OPEN):
                self._state, self._buffer = "think", head[len(_OPEN) :]
            elif _OPEN.startswith(head):
                return []  # "", "<", "<thi"...: cannot tell yet
            else:
                self._state, text, self._buffer = "text", self._buffer, ""
                return [("text", text)]
        return self._think()

    def _think(self) -> list[tuple[str, str]]:
        end = self._buffer.find(_CLOSE)
        if end >= 0:
            thinking, rest = self._buffer[:end], self._buffer[end + len(_CLOSE) :]
            self._state, self._buffer = "after", ""
            out = [("thinking", thinking)] if thinking else []
            return out + self.feed(rest)
        keep = next((n for n in range(len(_CLOSE) - 1, 0, -1) if self._buffer.endswith(_CLOSE[:n])), 0)
        thinking = self._buffer[: len(self._buffer) - keep]
        self._buffer = self._buffer[len(thinking) :]
        return [("thinking", thinking)] if thinking else []

    def flush(self) -> list[tuple[str, str]]:
        rest, self._buffer = self._buffer, ""
        if self._state == "think" and rest:
            return [("thinking", rest)]
        if self._state == "start" and rest.strip():
            return [("text", rest)]
        return []


@dataclass(slots=True)
class _Call:
    wire_id: str | None = None
    name: str | None = None
    block: int | None = None  # our block index once started
    pending: list[str] = field(default_factory=list)  # arguments that came before the name
    arguments: ArgumentStream = field(default_factory=ArgumentStream)


class OpenAIStreamDecoder:
    """Upstream chat.completion.chunk frames -> canonical events (see the module docstring).

    Errors: an ``error`` object before anything was emitted raises the matching ``UpstreamError``
    (so dispatch can retry or fall back); after that it becomes a ``StreamError`` event. A stream
    that ends with neither a finish_reason nor ``[DONE]`` raises ``UpstreamProtocolError`` in
    ``finish``: a truncated answer must never look complete.
    """

    def __init__(self, names: ToolNames, dialect: Dialect, *, model: str = "", provider: str = "") -> None:
        self._names = names
        self._dialect = dialect
        self._model = model
        self._provider = provider
        self._started = False
        self._ended = False
        self._saw_done = False
        self._finish_reason: str | None = None
        self._stop_sequence: str | None = None
        self._refused = False
        self._usage = Usage()
        self._splitter = ThinkSplitter()
        self._index = -1  # index of the last block started
        self._open: str | None = None  # kind of the open block: "text", "thinking", "tool_use"
        self._calls: list[_Call] = []
        self._by_index: dict[int, _Call] = {}
        self._by_id: dict[str, _Call] = {}
        self._open_call: _Call | None = None

    # -- input -----------------------------------------------------------------------------------

    def feed(self, sse: SSEFrame) -> list[StreamEvent]:
        data = sse.data.strip()
        if self._ended or not data:
            return []
        if data == b"[DONE]":
            self._saw_done = True
            return self._complete()
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise self._protocol_error(f"unreadable stream chunk ({exc}): {data[:200]!r}") from exc
        if not isinstance(chunk, dict):
            raise self._protocol_error(f"stream chunk is not an object: {data[:200]!r}")
        if chunk.get("error"):
            return self._error(chunk["error"])
        if sse.event == "error":  # an SSE error event carrying the error object itself
            return self._error(chunk)
        events: list[StreamEvent] = []
        if not self._started:
            events.append(self._message_start(chunk))
        usage = chunk.get("usage")
        groq = chunk.get("x_groq")
        if usage is None and isinstance(groq, dict):
            usage = groq.get("usage")  # where Groq reported usage before stream_options
        if isinstance(usage, dict):
            self._usage = usage_from_openai(usage)
        choices = chunk.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            events += self._choice(choices[0])
        elif self._finish_reason is not None and isinstance(usage, dict):
            events += self._complete()  # the usage-only chunk that follows the finish_reason
        return events

    def finish(self) -> list[StreamEvent]:
        """Events owed at the end of the upstream stream; raises if it was cut short."""
        if self._ended:
            return []
        if self._finish_reason is None and not self._saw_done:
            raise self._protocol_error("stream ended without a finish_reason or [DONE] (truncated)")
        return self._complete()

    def _choice(self, choice: JSON) -> list[StreamEvent]:
        delta = choice.get("delta")
        if self._open == "text" and self._splitter.in_text and type(delta) is dict:
            # Most chunks: more text for the open text block. The same events as the general
            # path below, without its steps; anything else in the chunk takes that path.
            content = delta.get("content")
            if (
                type(content) is str
                and content
                and not choice.get("finish_reason")
                and delta.get("tool_calls") is None
                and not delta.get("reasoning_content")
                and not delta.get("reasoning")
                and not delta.get("refusal")
            ):
                return [BlockDelta(index=self._index, delta=TextDelta(text=content))]
        events: list[StreamEvent] = []
        if isinstance(delta, dict):
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                events += self._piece("thinking", reasoning)
            content = delta.get("content")
            if isinstance(content, str) and content:
                for kind, piece in self._splitter.feed(content):
                    events += self._piece(kind, piece)
            refusal = delta.get("refusal")
            if isinstance(refusal, str) and refusal:
                self._refused = True
                events += self._piece("text", refusal)
            calls = delta.get("tool_calls")
            if isinstance(calls, list):
                for call in calls:
                    if isinstance(call, dict):
                        events += self._tool_call(call)
        finish_reason = choice.get("finish_reason")
        if isinstance(finish_reason, str) and finish_reason:
            if finish_reason == "error":  # OpenRouter: the error object may be absent
                return events + self._error({"message": "the provider ended the stream with an error"})
            self._finish_reason = finish_reason
            self._stop_sequence = matched_stop(choice)
            events += self._close_all()
        return events

    # -- blocks ----------------------------------------------------------------------------------

    def _piece(self, kind: str, text: str) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        if self._open != kind:
            events += self._close_block()
            self._index += 1
            self._open = kind
            block = ThinkingBlock(origin="openai") if kind == "thinking" else TextBlock(text="")
            events.append(BlockStart(index=self._index, block=block))
        delta = ThinkingDelta(thinking=text) if kind == "thinking" else TextDelta(text=text)
        events.append(BlockDelta(index=self._index, delta=delta))
        return events

    def _close_block(self) -> list[StreamEvent]:
        if self._open is None:
            return []
        events: list[StreamEvent] = []
        if self._open == "thinking":
            events.append(BlockDelta(index=self._index, delta=SignatureDelta(signature=THINKING_SIGNATURE)))
        elif self._open_call is not None:
            tail = self._open_call.arguments.close()
            if tail:
                events.append(BlockDelta(index=self._index, delta=InputJsonDelta(partial_json=tail)))
            self._open_call = None
        events.append(BlockStop(index=self._index))
        self._open = None
        return events

    def _close_all(self) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for kind, piece in self._splitter.flush():
            events += self._piece(kind, piece)
        unnamed = [call for call in self._calls if call.block is None]
        if unnamed:
            raise self._protocol_error(f"{len(unnamed)} tool call(s) never received a function name")
        return events + self._close_block()

    def _find_call(self, delta: JSON, function: JSON) -> _Call:
        """The call a tool_calls delta belongs to. Ollama sends whole calls without ``index`` (and
        older versions without ``id``): a new name or id then means a new call."""
        index, wire_id = delta.get("index"), delta.get("id")
        wire_id = wire_id if isinstance(wire_id, str) and wire_id else None
        call: _Call | None
        if isinstance(index, int):
            call = self._by_index.get(index)
            if call is not None and wire_id and call.wire_id and wire_id != call.wire_id:
                call = None  # same index reused for another call
        elif wire_id:
            call = self._by_id.get(wire_id)
        else:
            call = None if function.get("name") or not self._calls else self._calls[-1]
        if call is None:
            call = _Call(wire_id=wire_id)
            self._calls.append(call)
            if isinstance(index, int):
                self._by_index[index] = call
        if wire_id and call.wire_id is None:
            call.wire_id = wire_id
        if call.wire_id:
            self._by_id[call.wire_id] = call
        return call

    def _tool_call(self, delta: JSON) -> list[StreamEvent]:
        function = delta.get("function")
        function = function if isinstance(function, dict) else {}
        call = self._find_call(delta, function)
        name = function.get("name")
        if isinstance(name, str) and name and call.name is None:
            call.name = name
        arguments = function.get("arguments")
        if isinstance(arguments, dict):  # Ollama may send the arguments as an object
            arguments = orjson.dumps(arguments).decode()
        fragment = arguments if isinstance(arguments, str) else ""
        events: list[StreamEvent] = []
        if call.block is None:
            if call.name is None:
                call.pending.append(fragment)
                return events
            events += self._close_block()
            self._index += 1
            call.block, self._open, self._open_call = self._index, "tool_use", call
            names = self._names
            block = ToolUseBlock(id=names.from_wire_id(call.wire_id), name=names.from_wire_name(call.name))
            events.append(BlockStart(index=self._index, block=block))
            fragment = "".join(call.pending) + fragment
            call.pending.clear()
        elif call is not self._open_call:
            # Blocks are strictly sequential: a finished call cannot take more arguments.
            raise self._protocol_error("tool call arguments arrived for a call that was already closed")
        forwarded = call.arguments.feed(fragment) if fragment else ""
        if forwarded:
            events.append(BlockDelta(index=self._index, delta=InputJsonDelta(partial_json=forwarded)))
        return events

    # -- message ---------------------------------------------------------------------------------

    def _message_start(self, chunk: JSON) -> MessageStart:
        self._started = True
        message_id, model = chunk.get("id"), chunk.get("model")
        if not isinstance(message_id, str) or not message_id:
            message_id = self._names.fresh_id("msg")
        return MessageStart(id=message_id, model=model if isinstance(model, str) and model else self._model)

    def _complete(self) -> list[StreamEvent]:
        events: list[StreamEvent] = [] if self._started else [self._message_start({})]
        events += self._close_all()
        stop_reason, stop_sequence = stop_reason_for(
            self._finish_reason,
            tool_use=bool(self._calls),
            matched_stop=self._stop_sequence,
            refused=self._refused,
        )
        events.append(MessageDelta(stop_reason=stop_reason, stop_sequence=stop_sequence, usage=self._usage))
        events.append(MessageStop())
        self._ended = True
        return events

    def _error(self, error: object) -> list[StreamEvent]:
        status = error_status(error)
        message = error.get("message") if isinstance(error, dict) else None
        text = message if isinstance(message, str) and message else f"provider error: {error!r}"[:500]
        if self._provider:
            text = f"{self._provider}: {text}"
        if not self._started:
            raise upstream_error_for_status(status, text, provider=self._provider)
        self._ended = True
        return [StreamError(error_type=anthropic_error_type(status), message=text)]

    def _protocol_error(self, message: str) -> UpstreamProtocolError:
        text = f"{self._provider}: {message}" if self._provider else message
        return UpstreamProtocolError(text, provider=self._provider)


# =========================================================================== front side


class OpenAIStreamEncoder:
    """Canonical events -> chat.completion.chunk SSE frames for an OpenAI client.

    ``raw`` on events is ignored: it holds the upstream's bytes, which are not OpenAI chunks for
    this client (other format, upstream model and tool names).
    """

    def __init__(self, model: str, include_usage: bool, *, created: int | None = None) -> None:
        self._model = model
        self._include_usage = include_usage
        self._created = int(time.time()) if created is None else created
        self._id = f"chatcmpl-{secrets.token_hex(12)}"
        self._start_usage = Usage()
        self._tool_index: dict[int, int] = {}  # block index -> tool_calls index

    def encode(self, event: StreamEvent) -> bytes:
        match event:
            case MessageStart():
                self._id = client_id(event.id, OPENAI_ID_PREFIX)
                self._start_usage = event.usage
                return self._chunk({"role": "assistant", "content": ""})
            case BlockStart(block=ToolUseBlock() as block):
                position = self._tool_index.setdefault(event.index, len(self._tool_index))
                # A block may open with its whole input (no deltas follow) instead of {}.
                arguments = orjson.dumps(block.input).decode() if block.input else ""
                call = {
                    "index": position,
                    "id": block.id,
                    "type": "function",
                    "function": {"name": block.name, "arguments": arguments},
                }
                return self._chunk({"tool_calls": [call]})
            case BlockDelta(delta=TextDelta() as delta):
                return self._chunk({"content": delta.text})
            case BlockDelta(delta=ThinkingDelta() as delta):
                return self._chunk({"reasoning_content": delta.thinking})
            case BlockDelta(delta=InputJsonDelta() as delta) if event.index in self._tool_index:
                call = {"index": self._tool_index[event.index], "function": {"arguments": delta.partial_json}}
                return self._chunk({"tool_calls": [call]})
            case MessageDelta():
                return self._finish(event)
            case StreamError():
                return frame(_error_chunk(event))
        return b""  # block starts/stops, signatures, pings, message_stop: nothing to say in OpenAI's format

    def done(self) -> bytes:
        return b"data: [DONE]\n\n"

    def _chunk(self, delta: JSON, finish_reason: str | None = None) -> bytes:
        body: JSON = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if self._include_usage:  # OpenAI: every chunk carries "usage": null except the last one
            body["usage"] = None
        return frame(orjson.dumps(body))

    def _finish(self, event: MessageDelta) -> bytes:
        finish_reason = finish_reason_for(event.stop_reason)
        if event.stop_reason != "max_tokens" and self._tool_index:
            finish_reason = "tool_calls"
        out = self._chunk({}, finish_reason)
        if self._include_usage:
            # message_delta usage is cumulative but may omit the input counts message_start gave.
            start, final = self._start_usage, event.usage
            usage = Usage(
                input_tokens=final.input_tokens or start.input_tokens,
                output_tokens=final.output_tokens or start.output_tokens,
                cache_read_input_tokens=final.cache_read_input_tokens or start.cache_read_input_tokens,
                cache_creation_input_tokens=(
                    final.cache_creation_input_tokens or start.cache_creation_input_tokens
                ),
            )
            body = {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self._model,
                "choices": [],
                "usage": usage_to_openai(usage),
            }
            out += frame(orjson.dumps(body))
        return out


def _error_chunk(event: StreamError) -> bytes:
    # The OpenAI SDKs raise APIError for a data line carrying an "error" object.
    return error_body(event.error_type, event.message)
