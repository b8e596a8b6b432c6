"""OpenAI chat streams: upstream decoder and front encoder, golden files and stream rules.

Goldens: tests/golden/openai/streams (upstream SSE -> canonical events) and
tests/golden/openai/front_streams (canonical events -> OpenAI chunks). Regenerate with
CCROUTER_REGEN_GOLDEN=1 and review the diff. Every decoded stream is also checked against Anthropic's
stream grammar, and decoded again with the bytes cut at every few positions (same events expected).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest

from ccrouter.codecs.openai.chat import Dialect
from ccrouter.codecs.openai.stream import OpenAIStreamDecoder, OpenAIStreamEncoder, ThinkSplitter
from ccrouter.codecs.openai.toolnames import ToolNames
from ccrouter.codecs.sse import SSEFrame, SSEParser
from ccrouter.errors import UpstreamProtocolError, UpstreamRateLimitError
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
    OtherBlock,
    Ping,
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
from golden import GoldenDir, names_for, sse_bytes, with_wire_names
from golden import decode_openai_stream as decode

OPENAI = GoldenDir("openai")
GOLDEN = OPENAI.root
cases = OPENAI.cases
load = OPENAI.load
assert_golden = OPENAI.check


def event_json(event: StreamEvent) -> dict[str, Any]:
    data = {"event": type(event).__name__, **dataclasses.asdict(event)}
    data.pop("raw")
    return data


def frame_of(chunk: Any) -> SSEFrame:
    data = chunk.encode() if isinstance(chunk, str) else orjson.dumps(chunk)
    return SSEFrame(event=None, data=data, raw=b"data: " + data + b"\n\n")


def assert_anthropic_grammar(events: list[StreamEvent]) -> None:
    """message_start first; blocks strictly sequential with matching deltas; no empty text block;
    thinking closed by a signature; tool input valid JSON; then message_delta, message_stop (or an
    error ends the stream)."""
    assert events
    assert isinstance(events[0], MessageStart)
    if isinstance(events[-1], StreamError):
        return
    assert isinstance(events[-2], MessageDelta)
    assert isinstance(events[-1], MessageStop)
    open_block: ContentBlock | None = None
    index, text, signed = -1, "", False
    for event in events[1:-2]:
        if isinstance(event, BlockStart):
            assert open_block is None
            assert event.index == index + 1
            open_block, index, text, signed = event.block, event.index, "", False
        elif isinstance(event, BlockDelta):
            assert open_block is not None
            assert event.index == index
            delta: Delta = event.delta
            expected = {TextBlock: (TextDelta,), ThinkingBlock: (ThinkingDelta, SignatureDelta)}
            allowed = expected.get(type(open_block), (InputJsonDelta,))
            assert isinstance(delta, allowed)
            if isinstance(delta, SignatureDelta):
                signed = True
            else:
                assert not signed
                text += (
                    getattr(delta, "text", "")
                    or getattr(delta, "thinking", "")
                    or getattr(delta, "partial_json", "")
                )
        else:
            assert isinstance(event, BlockStop)
            assert event.index == index
            assert open_block is not None
            if isinstance(open_block, TextBlock):
                assert text
            if isinstance(open_block, ThinkingBlock):
                assert signed
            if isinstance(open_block, ToolUseBlock):
                assert isinstance(orjson.loads(text), dict)
            open_block = None
    assert open_block is None


# =========================================================================== upstream decoder


@pytest.mark.parametrize("case", cases("streams"))
def test_stream_golden(case: str) -> None:
    fixture = load("streams", case)
    names = names_for(fixture["tools"])
    data = sse_bytes(with_wire_names(fixture["frames"], names))
    events = decode(data, names)
    assert_anthropic_grammar(events)
    assert_golden("streams", case, [event_json(event) for event in events])


@pytest.mark.parametrize("case", cases("streams"))
@pytest.mark.parametrize("cut", [1, 7])
def test_stream_independent_of_byte_boundaries(case: str, cut: int) -> None:
    """UTF-8 characters and frames cut anywhere by the network decode the same."""
    fixture = load("streams", case)
    names = names_for(fixture["tools"])
    data = sse_bytes(with_wire_names(fixture["frames"], names))
    whole = [event_json(e) for e in decode(data, names_for(fixture["tools"]))]
    assert [event_json(e) for e in decode(data, names_for(fixture["tools"]), cut=cut)] == whole


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "c",
        "model": "m",
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
        **extra,
    }


def call(index: int, arguments: str, call_id: str | None = None, name: str | None = None) -> dict[str, Any]:
    function: dict[str, Any] = {"arguments": arguments}
    if name:
        function["name"] = name
    out: dict[str, Any] = {"index": index, "function": function}
    if call_id:
        out["id"] = call_id
    return out


def test_tool_arguments_are_forwarded_as_they_arrive() -> None:
    decoder = OpenAIStreamDecoder(ToolNames(), Dialect())
    first = decoder.feed(frame_of(chunk({"tool_calls": [call(0, "", "call_1", "Bash")]})))
    assert [type(e) for e in first] == [MessageStart, BlockStart]
    fragments = ['{"comm', 'and": "l', "s -la", '"}']
    for fragment in fragments:
        events = decoder.feed(frame_of(chunk({"tool_calls": [call(0, fragment)]})))
        assert len(events) == 1
        assert isinstance(events[0], BlockDelta)
        assert isinstance(events[0].delta, InputJsonDelta)
        assert events[0].delta.partial_json
    events = decoder.feed(frame_of(chunk(finish="tool_calls")))
    assert [type(e) for e in events] == [BlockStop]


def test_text_run_and_the_chunks_that_leave_it() -> None:
    # Text chunks after the first take a short path; a chunk that carries anything else (reasoning,
    # a refusal, a tool call, a finish reason) must give what the general path gives. Expected:
    # the general path's events for the same chunks.
    def text(index: int, piece: str) -> BlockDelta:
        return BlockDelta(index=index, delta=TextDelta(text=piece))

    decoder = OpenAIStreamDecoder(ToolNames(), Dialect())
    expected: list[tuple[dict[str, Any], list[StreamEvent]]] = [
        (chunk({"content": "llo"}), [text(0, "llo")]),
        (chunk({"content": " there", "reasoning_content": None}), [text(0, " there")]),  # DeepSeek
        (chunk({"content": ""}), []),
        (chunk({"content": "!", "refusal": "no"}), [text(0, "!"), text(0, "no")]),
        (
            chunk({"reasoning_content": "hmm"}),
            [
                BlockStop(index=0),
                BlockStart(index=1, block=ThinkingBlock(origin="openai")),
                BlockDelta(index=1, delta=ThinkingDelta(thinking="hmm")),
            ],
        ),
        (
            chunk({"content": "ok"}),
            [
                BlockDelta(index=1, delta=SignatureDelta(signature="ccr:openai")),
                BlockStop(index=1),
                BlockStart(index=2, block=TextBlock(text="")),
                text(2, "ok"),
            ],
        ),
        (chunk({"content": "and"}), [text(2, "and")]),
        (
            chunk({"content": "x", "tool_calls": [call(0, "", "call_1", "Bash")]}),
            [
                text(2, "x"),
                BlockStop(index=2),
                BlockStart(index=3, block=ToolUseBlock(id="call_1", name="Bash")),
            ],
        ),
        (
            chunk({"content": "late"}, finish="tool_calls"),
            [
                BlockDelta(index=3, delta=InputJsonDelta(partial_json="{}")),
                BlockStop(index=3),
                BlockStart(index=4, block=TextBlock(text="")),
                text(4, "late"),
                BlockStop(index=4),
            ],
        ),
    ]
    first = decoder.feed(frame_of(chunk({"role": "assistant", "content": "He"})))
    assert [type(e) for e in first] == [MessageStart, BlockStart, BlockDelta]
    for item, events in expected:
        assert decoder.feed(frame_of(item)) == events, item


def test_message_delta_waits_for_the_usage_chunk() -> None:
    decoder = OpenAIStreamDecoder(ToolNames(), Dialect())
    decoder.feed(frame_of(chunk({"content": "Hi"})))
    after_finish = decoder.feed(frame_of(chunk(finish="stop")))
    assert [type(e) for e in after_finish] == [BlockStop]
    usage = {"prompt_tokens": 10, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 4}}
    final = decoder.feed(frame_of({"id": "c", "choices": [], "usage": usage}))
    assert final == [
        MessageDelta(
            stop_reason="end_turn", usage=Usage(input_tokens=6, output_tokens=2, cache_read_input_tokens=4)
        ),
        MessageStop(),
    ]
    assert decoder.feed(frame_of("[DONE]")) == []
    assert decoder.finish() == []


@pytest.mark.parametrize(
    "frames",
    [
        [],
        [chunk({"content": "Hel"})],
        [chunk({"tool_calls": [call(0, '{"a": ', "c1", "f")]})],
        [chunk({"reasoning_content": "thinking..."})],
    ],
)
def test_truncated_stream_raises(frames: list[Any]) -> None:
    decoder = OpenAIStreamDecoder(ToolNames(), Dialect(), provider="deepseek")
    for item in frames:
        decoder.feed(frame_of(item))
    with pytest.raises(UpstreamProtocolError, match="deepseek: stream ended without a finish_reason"):
        decoder.finish()


def test_error_before_any_event_raises_mapped_error() -> None:
    decoder = OpenAIStreamDecoder(ToolNames(), Dialect(), provider="groq")
    error = {"error": {"message": "Rate limit reached", "type": "tokens", "code": "rate_limit_exceeded"}}
    with pytest.raises(UpstreamRateLimitError, match="groq: Rate limit reached"):
        decoder.feed(frame_of(error))


def test_finish_reason_error_without_error_object() -> None:
    decoder = OpenAIStreamDecoder(ToolNames(), Dialect())
    decoder.feed(frame_of(chunk({"content": "a"})))
    events = decoder.feed(frame_of(chunk(finish="error")))
    assert isinstance(events[-1], StreamError)
    assert events[-1].error_type == "api_error"
    assert decoder.finish() == []


@pytest.mark.parametrize("data", [b"{not json", b"[1, 2]"])
def test_unreadable_chunk_raises(data: bytes) -> None:
    decoder = OpenAIStreamDecoder(ToolNames(), Dialect())
    with pytest.raises(UpstreamProtocolError):
        decoder.feed(SSEFrame(event=None, data=data, raw=data))


def test_interleaved_tool_arguments_raise() -> None:
    decoder = OpenAIStreamDecoder(ToolNames(), Dialect())
    decoder.feed(frame_of(chunk({"tool_calls": [call(0, "{", "a", "f")]})))
    decoder.feed(frame_of(chunk({"tool_calls": [call(1, "{", "b", "g")]})))
    with pytest.raises(UpstreamProtocolError, match="already closed"):
        decoder.feed(frame_of(chunk({"tool_calls": [call(0, "}")]})))


def test_arguments_before_name_are_kept() -> None:
    decoder = OpenAIStreamDecoder(ToolNames(), Dialect())
    decoder.feed(frame_of(chunk({"tool_calls": [call(0, '{"a"', "c1")]})))
    events = decoder.feed(
        frame_of(chunk({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": ":1}"}}]}))
    )
    assert events == [
        BlockStart(index=0, block=ToolUseBlock(id="c1", name="f")),
        BlockDelta(index=0, delta=InputJsonDelta(partial_json='{"a":1}')),
    ]


def test_call_without_name_is_a_protocol_error() -> None:
    decoder = OpenAIStreamDecoder(ToolNames(), Dialect())
    decoder.feed(frame_of(chunk({"tool_calls": [call(0, "{}", "c1")]})))
    with pytest.raises(UpstreamProtocolError, match="never received a function name"):
        decoder.feed(frame_of(chunk(finish="tool_calls")))


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        (["<think>a</think>b"], [("thinking", "a"), ("text", "b")]),
        (["<", "think", ">", "a", "</", "think", ">", "\n", "b"], [("thinking", "a"), ("text", "b")]),
        (["  <think>x</thi", "nk", ">\n\ny"], [("thinking", "x"), ("text", "y")]),
        (["<thinking about it"], [("text", "<thinking about it")]),
        (["no tags <think>x</think>"], [("text", "no tags <think>x</think>")]),
        (["<think>never closed </th"], [("thinking", "never closed "), ("thinking", "</th")]),
        (["<th"], [("text", "<th")]),
        (["\n\n"], []),
    ],
)
def test_think_splitter(pieces: list[str], expected: list[tuple[str, str]]) -> None:
    splitter = ThinkSplitter()
    out = [item for piece in pieces for item in splitter.feed(piece)] + splitter.flush()
    merged: list[tuple[str, str]] = []
    for kind, text in out:
        if merged and merged[-1][0] == kind and kind == "text":
            merged[-1] = (kind, merged[-1][1] + text)
        else:
            merged.append((kind, text))
    assert [(k, t) for k, t in merged if k == "text"] == [(k, t) for k, t in expected if k == "text"]
    assert "".join(t for k, t in out if k == "thinking") == "".join(t for k, t in expected if k == "thinking")


# =========================================================================== front encoder


def block_from(data: dict[str, Any]) -> ContentBlock:
    kinds: dict[str, Any] = {
        "text": TextBlock,
        "thinking": ThinkingBlock,
        "tool_use": ToolUseBlock,
        "other": OtherBlock,
    }
    fields = {key: value for key, value in data.items() if key != "type"}
    block: ContentBlock = kinds[data["type"]](**fields)
    return block


def delta_from(data: dict[str, Any]) -> Delta:
    kinds: dict[str, Any] = {
        "text_delta": TextDelta,
        "thinking_delta": ThinkingDelta,
        "input_json_delta": InputJsonDelta,
        "signature_delta": SignatureDelta,
    }
    delta: Delta = kinds[data["type"]](**{key: value for key, value in data.items() if key != "type"})
    return delta


def event_from(data: dict[str, Any]) -> StreamEvent:
    fields = {key: value for key, value in data.items() if key != "event"}
    if "block" in fields:
        fields["block"] = block_from(fields["block"])
    if "delta" in fields:
        fields["delta"] = delta_from(fields["delta"])
    if "usage" in fields:
        fields["usage"] = Usage(**fields["usage"])
    kinds: dict[str, Any] = {
        cls.__name__: cls
        for cls in (
            MessageStart,
            BlockStart,
            BlockDelta,
            BlockStop,
            MessageDelta,
            MessageStop,
            Ping,
            StreamError,
        )
    }
    event: StreamEvent = kinds[data["event"]](**fields)
    return event


def frames_of(data: bytes) -> list[Any]:
    """Each ``data:`` payload, parsed (``[DONE]`` kept as a string)."""
    assert data.endswith(b"\n\n")
    out = []
    for frame in SSEParser().feed(data):
        assert frame.event is None
        out.append(frame.data.decode() if frame.data == b"[DONE]" else orjson.loads(frame.data))
    return out


@pytest.mark.parametrize("case", cases("front_streams"))
def test_front_stream_golden(case: str) -> None:
    fixture = load("front_streams", case)
    encoder = OpenAIStreamEncoder(fixture["model"], fixture["include_usage"], created=1700000000)
    data = b"".join(encoder.encode(event_from(item)) for item in fixture["events"])
    if not isinstance(event_from(fixture["events"][-1]), StreamError):
        data += encoder.done()
    assert_golden("front_streams", case, frames_of(data))


def test_front_stream_is_read_by_the_openai_sdk_shape() -> None:
    """Tool call deltas accumulate per index into complete calls, as SDK helpers do."""
    fixture = load("front_streams", "thinking_text_tools_usage")
    encoder = OpenAIStreamEncoder("gpt-4o", True, created=1)
    data = b"".join(encoder.encode(event_from(item)) for item in fixture["events"]) + encoder.done()
    calls: dict[int, dict[str, str]] = {}
    for item in frames_of(data)[:-1]:
        for choice in item["choices"]:
            for tool_call in choice["delta"].get("tool_calls", ()):
                entry = calls.setdefault(tool_call["index"], {"id": "", "name": "", "arguments": ""})
                entry["id"] += tool_call.get("id", "")
                entry["name"] += tool_call["function"].get("name", "")
                entry["arguments"] += tool_call["function"].get("arguments", "")
    assert calls == {
        0: {"id": "toolu_a", "name": "Bash", "arguments": '{"command": "ls"}'},
        1: {"id": "toolu_b", "name": "Read", "arguments": "{}"},
    }


def test_sse_error_event_without_envelope() -> None:
    decoder = OpenAIStreamDecoder(ToolNames(), Dialect(), provider="p")
    decoder.feed(frame_of(chunk({"content": "a"})))
    data = b'{"message": "overloaded", "code": 503}'
    events = decoder.feed(SSEFrame(event="error", data=data, raw=b"event: error\ndata: " + data + b"\n\n"))
    assert events == [StreamError(error_type="overloaded_error", message="p: overloaded")]


def test_front_tool_block_opening_with_its_whole_input() -> None:
    encoder = OpenAIStreamEncoder("m", False, created=1)
    encoder.encode(MessageStart(id="x", model="m"))
    data = encoder.encode(BlockStart(index=0, block=ToolUseBlock(id="t", name="f", input={"a": 1})))
    (item,) = frames_of(data)
    assert item["choices"][0]["delta"]["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"a":1}'}
    assert encoder.encode(Ping()) == b""
    assert encoder.encode(MessageStop()) == b""
