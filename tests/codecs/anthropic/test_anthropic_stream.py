"""Anthropic stream codec: recorded-style SSE transcripts decoded, re-encoded raw and canonically.

Goldens live in tests/golden/anthropic/streams/. Regenerate with CCROUTER_REGEN_GOLDEN=1.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from ccrouter.codecs.anthropic.codec import AnthropicStreamDecoder, encode_event
from ccrouter.codecs.anthropic.stream import _event_json
from ccrouter.codecs.sse import SSEFrame, SSEParser, frame
from ccrouter.errors import UpstreamProtocolError
from ccrouter.messages import (
    BlockDelta,
    BlockStart,
    BlockStop,
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
    ToolUseBlock,
    Usage,
)
from golden import assert_golden

STREAMS = Path(__file__).resolve().parents[2] / "golden" / "anthropic" / "streams"
CASES = sorted(path.stem for path in STREAMS.glob("*.sse") if not path.name.endswith(".canonical.sse"))
REGEN = os.environ.get("CCROUTER_REGEN_GOLDEN") == "1"


def assert_golden_bytes(path: Path, actual: bytes) -> None:
    if REGEN:
        path.write_bytes(actual)
        return
    assert actual == path.read_bytes(), f"golden mismatch: {path.name}"


assert_golden_json = assert_golden


def frames_of(transcript: bytes, chunk: int) -> list[SSEFrame]:
    """Parse the transcript as if it arrived in ``chunk``-byte network reads."""
    parser = SSEParser()
    frames: list[SSEFrame] = []
    for start in range(0, len(transcript), chunk):
        frames.extend(parser.feed(transcript[start : start + chunk]))
    return frames + parser.flush()


def decode_all(transcript: bytes, chunk: int = 7) -> list[StreamEvent]:
    decoder = AnthropicStreamDecoder()
    events = [event for frame in frames_of(transcript, chunk) for event in decoder.feed(frame)]
    return events + decoder.finish()


def as_json(event: StreamEvent) -> dict[str, Any]:
    data = dataclasses.asdict(event)
    data.pop("raw")
    return {"event": type(event).__name__, **data}


def is_subset(small: Any, big: Any) -> bool:
    """Every key/value of ``small`` is in ``big`` (recursively): the canonical encoding may drop
    fields we do not model (usage breakdowns, service_tier) but must not change or invent any."""
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and is_subset(v, big[k]) for k, v in small.items())
    if isinstance(small, list):
        return isinstance(big, list) and len(small) == len(big) and all(map(is_subset, small, big))
    return bool(small == big)


@pytest.mark.parametrize("case", CASES)
def test_stream_golden(case: str) -> None:
    transcript = (STREAMS / f"{case}.sse").read_bytes()
    events = decode_all(transcript)
    assert_golden_json(STREAMS / f"{case}.events.json", [as_json(event) for event in events])
    # Same-format passthrough: every frame forwarded byte for byte, except event kinds we ignore.
    forwarded = b"".join(encode_event(event) for event in events)
    assert forwarded == b"".join(f.raw for f in frames_of(transcript, 1 << 20) if f.event != "future_event")
    # Canonical encoding (as for events coming from another wire format).
    canonical = b"".join(encode_event(dataclasses.replace(event, raw=None)) for event in events)
    assert_golden_bytes(STREAMS / f"{case}.canonical.sse", canonical)
    original = [f for f in frames_of(transcript, 1 << 20) if f.event != "future_event"]
    rebuilt = frames_of(canonical, 1 << 20)
    assert len(rebuilt) == len(original)
    for ours, theirs in zip(rebuilt, original, strict=True):
        ours_data, theirs_data = orjson.loads(ours.data), orjson.loads(theirs.data)
        if theirs_data.get("delta", {}).get("type") == "citations_delta":
            assert ours.event == "ping"  # carried as a ping: no canonical form
            continue
        assert ours.event == theirs.event
        if ours.event == "message_delta":
            # Our final usage also carries the input counts message_start gave; the rest must agree.
            ours_usage, theirs_usage = ours_data.pop("usage"), theirs_data.pop("usage")
            assert all(ours_usage[k] == v for k, v in theirs_usage.items() if k in ours_usage)
        assert is_subset(ours_data, theirs_data), (ours_data, theirs_data)


def test_stream_cases_present() -> None:
    assert CASES == ["server_tool_redacted", "thinking_text_tool"]


def test_decoded_thinking_text_tool_events() -> None:
    events = decode_all((STREAMS / "thinking_text_tool.sse").read_bytes(), chunk=3)
    start = events[0]
    assert isinstance(start, MessageStart)
    assert start.usage == Usage(input_tokens=12, output_tokens=4, cache_read_input_tokens=20480,
                                cache_creation_input_tokens=1024)  # fmt: skip
    kinds = [type(event).__name__ for event in events]
    assert kinds[:3] == ["MessageStart", "BlockStart", "Ping"]
    assert kinds[-2:] == ["MessageDelta", "MessageStop"]
    thinking = "".join(e.delta.thinking for e in events if isinstance(e, BlockDelta) and e.index == 0
                       and e.delta.type == "thinking_delta")  # fmt: skip
    assert thinking == "The user wants the files listed. I'll run ls — with details."
    signatures = [
        e.delta for e in events if isinstance(e, BlockDelta) and isinstance(e.delta, SignatureDelta)
    ]
    assert len(signatures) == 1
    assert signatures[0].signature.startswith("EqQB")
    tool_start = next(e for e in events if isinstance(e, BlockStart) and e.index == 2)
    assert tool_start.block == ToolUseBlock(id="toolu_01T1x1fJ34qAmk2tNTrN7Up6", name="Bash", input={})
    partial = "".join(e.delta.partial_json for e in events if isinstance(e, BlockDelta)
                      and isinstance(e.delta, InputJsonDelta))  # fmt: skip
    assert orjson.loads(partial) == {"command": "ls -la", "description": "List files"}
    final = events[-2]
    assert isinstance(final, MessageDelta)
    assert final.stop_reason == "tool_use"
    assert final.usage == Usage(input_tokens=12, output_tokens=187, cache_read_input_tokens=20480,
                                cache_creation_input_tokens=1024)  # fmt: skip


def test_server_tool_blocks_and_usage_merge() -> None:
    events = decode_all((STREAMS / "server_tool_redacted.sse").read_bytes())
    starts = [e for e in events if isinstance(e, BlockStart)]
    assert isinstance(starts[0].block, OtherBlock)
    assert starts[0].block.raw["type"] == "server_tool_use"
    assert isinstance(starts[1].block, OtherBlock)
    assert starts[1].block.raw["type"] == "web_search_tool_result"
    assert starts[2].block == ThinkingBlock(redacted=True, data="EmwKAhgBEgy3va3pzix")
    assert starts[3].block == TextBlock(text="")
    final = next(e for e in events if isinstance(e, MessageDelta))
    # message_delta omitted the input counts: they come from message_start.
    assert final.usage == Usage(input_tokens=2679, output_tokens=510)


def test_error_event_ends_stream() -> None:
    decoder = AnthropicStreamDecoder()
    raw = (
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    (event,) = decoder.feed(SSEParser().feed(raw)[0])
    assert event == StreamError(error_type="overloaded_error", message="Overloaded", raw=raw)
    assert decoder.finish() == []


def test_truncated_stream_raises() -> None:
    transcript = (STREAMS / "thinking_text_tool.sse").read_bytes()
    cut = transcript[: transcript.index(b"event: message_stop")]
    with pytest.raises(UpstreamProtocolError, match="message_stop"):
        decode_all(cut)


def test_invalid_json_frame_raises() -> None:
    with pytest.raises(UpstreamProtocolError):
        AnthropicStreamDecoder().feed(SSEFrame(event="content_block_delta", data=b"{oops", raw=b""))


def test_data_only_frames_use_type_field() -> None:
    # Some Anthropic-compatible servers omit "event:" lines; the JSON type still names the event.
    frame = SSEParser().feed(b'data: {"type":"content_block_stop","index":4}\n\n')[0]
    assert AnthropicStreamDecoder().feed(frame) == [BlockStop(index=4, raw=frame.raw)]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            MessageStart(id="msg_1", model="gpt-4o", usage=Usage(input_tokens=9)),
            b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message",'
            b'"role":"assistant","model":"gpt-4o","content":[],"stop_reason":null,"stop_sequence":null,'
            b'"usage":{"input_tokens":9,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,'
            b'"output_tokens":0}}}\n\n',
        ),
        (
            BlockStart(index=0, block=ThinkingBlock(signature="ccr:openai", origin="openai")),
            b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
            b'"content_block":{"type":"thinking","thinking":"","signature":""}}\n\n',
        ),
        (
            BlockStart(index=1, block=ToolUseBlock(id="call_1", name="f")),
            b'event: content_block_start\ndata: {"type":"content_block_start","index":1,'
            b'"content_block":{"type":"tool_use","id":"call_1","name":"f","input":{}}}\n\n',
        ),
        (
            BlockDelta(index=1, delta=TextDelta(text="hi")),
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,'
            b'"delta":{"type":"text_delta","text":"hi"}}\n\n',
        ),
        (
            MessageDelta(stop_reason="max_tokens", usage=Usage(input_tokens=3, output_tokens=4)),
            b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"max_tokens",'
            b'"stop_sequence":null},"usage":{"input_tokens":3,"cache_creation_input_tokens":0,'
            b'"cache_read_input_tokens":0,"output_tokens":4}}\n\n',
        ),
        (MessageStop(), b'event: message_stop\ndata: {"type":"message_stop"}\n\n'),
        (Ping(), b'event: ping\ndata: {"type":"ping"}\n\n'),
        (
            StreamError(error_type="api_error", message="boom"),
            b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"boom"}}\n\n',
        ),
    ],
)
def test_encode_event_exact(event: StreamEvent, expected: bytes) -> None:
    assert encode_event(event) == expected


@pytest.mark.parametrize(
    "text", ["", "plain", 'quote " and \\ backslash', "line\nbreak\ttab\r", "é ü 漢字 🎉", "\x00\x1f\u2028"]
)
@pytest.mark.parametrize("index", [0, 7, 1234])
def test_text_delta_template_matches_the_general_encoding(text: str, index: int) -> None:
    event = BlockDelta(index=index, delta=TextDelta(text=text))
    name, data = _event_json(event)
    assert encode_event(event) == frame(orjson.dumps(data), name)
