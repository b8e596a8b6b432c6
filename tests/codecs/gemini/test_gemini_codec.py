"""Gemini codec: golden files for every translation case, plus the properties goldens cannot show.

Goldens live in tests/golden/gemini/{encode,decode,stream}: ``<case>.json`` (or ``.sse``) is the input,
``<case>.expected.json`` the output. Set CCROUTER_REGEN_GOLDEN=1 to rewrite the expected files.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import orjson
import pytest

from ccrouter.codecs.anthropic.codec import decode_request
from ccrouter.codecs.anthropic.stream import encode_block
from ccrouter.codecs.gemini.codec import GeminiContext, GeminiStreamDecoder, decode_response, encode_request
from ccrouter.codecs.sse import SSEFrame, SSEParser
from ccrouter.errors import UpstreamOverloadedError, UpstreamProtocolError, UpstreamRateLimitError
from ccrouter.messages import (
    BlockDelta,
    BlockStart,
    BlockStop,
    InputJsonDelta,
    MessageDelta,
    MessageStart,
    MessageStop,
    SignatureDelta,
    StreamEvent,
    TextBlock,
    TextDelta,
    ThinkingBlock,
    ThinkingDelta,
    ToolUseBlock,
)
from golden import assert_golden

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "gemini"


def _cases(kind: str, suffix: str) -> list[str]:
    return sorted(
        p.name[: -len(suffix)] for p in (GOLDEN / kind).glob(f"*{suffix}") if ".expected" not in p.name
    )


def check_golden(path: Path, actual: Any) -> None:
    """Compare ``actual`` (normalised through JSON) with its golden file."""
    assert_golden(path, orjson.loads(orjson.dumps(actual)))


def _load(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


def _event_json(event: StreamEvent) -> dict[str, Any]:
    data = dataclasses.asdict(event)
    data.pop("raw", None)
    return {"event": type(event).__name__, **data}


def _decode_stream(raw: bytes, context: GeminiContext, piece: int = 7) -> list[StreamEvent]:
    """Feed the transcript in ``piece``-byte slices, as a network would (splitting UTF-8 characters)."""
    parser = SSEParser()
    decoder = GeminiStreamDecoder(context)
    events: list[StreamEvent] = []
    for start in range(0, len(raw), piece):
        for frame in parser.feed(raw[start : start + piece]):
            events.extend(decoder.feed(frame))
    for frame in parser.flush():
        events.extend(decoder.feed(frame))
    events.extend(decoder.finish())
    return events


def assert_anthropic_grammar(events: list[StreamEvent]) -> None:
    """MessageStart, strictly sequential non-empty blocks, thinking closed by a signature, then
    MessageDelta and MessageStop."""
    assert isinstance(events[0], MessageStart)
    assert isinstance(events[-2], MessageDelta)
    assert isinstance(events[-1], MessageStop)
    open_block: Any = None
    next_index = 0
    content = signed = False
    for event in events[1:-2]:
        if isinstance(event, BlockStart):
            assert open_block is None, "a block was opened before the previous one closed"
            assert event.index == next_index
            open_block, content, signed = event.block, False, False
        elif isinstance(event, BlockDelta):
            assert open_block is not None
            assert event.index == next_index
            assert not signed, "nothing may follow a thinking block's signature"
            if isinstance(event.delta, TextDelta):
                assert isinstance(open_block, TextBlock)
                assert event.delta.text
            content = True
            signed = isinstance(event.delta, SignatureDelta)
        else:
            assert isinstance(event, BlockStop)
            assert event.index == next_index
            if isinstance(open_block, TextBlock):
                assert content, "empty text block"
            if isinstance(open_block, ThinkingBlock):
                assert signed, "thinking block closed without a signature"
            open_block = None
            next_index += 1
    assert open_block is None


# --------------------------------------------------------------------------- goldens


@pytest.mark.parametrize("case", _cases("encode", ".json"))
def test_encode_golden(case: str) -> None:
    fixture = _load(GOLDEN / "encode" / f"{case}.json")
    request = decode_request(fixture["request"])
    body, context = encode_request(
        request, fixture["model"], function_call_ids=fixture.get("function_call_ids", True)
    )
    check_golden(
        GOLDEN / "encode" / f"{case}.expected.json", {"body": body, "tool_names": context.tool_names}
    )


@pytest.mark.parametrize("case", _cases("decode", ".json"))
def test_decode_golden(case: str) -> None:
    fixture = _load(GOLDEN / "decode" / f"{case}.json")
    context = GeminiContext(model=fixture["model"], tool_names=fixture["tool_names"])
    response = decode_response(orjson.dumps(fixture["response"]), context)
    check_golden(GOLDEN / "decode" / f"{case}.expected.json", dataclasses.asdict(response))


@pytest.mark.parametrize("case", _cases("stream", ".sse"))
@pytest.mark.parametrize("piece", [7, 1 << 16])
def test_stream_golden(case: str, piece: int) -> None:
    context = GeminiContext(**_load(GOLDEN / "stream" / f"{case}.json"))
    events = _decode_stream((GOLDEN / "stream" / f"{case}.sse").read_bytes(), context, piece)
    assert_anthropic_grammar(events)
    check_golden(GOLDEN / "stream" / f"{case}.expected.json", [_event_json(e) for e in events])


# --------------------------------------------------------------------------- encode properties


def _encode(fixture: str, **options: Any) -> dict[str, Any]:
    data = _load(GOLDEN / "encode" / f"{fixture}.json")
    body, _ = encode_request(decode_request(data["request"]), data["model"], **options)
    return body


def test_billing_header_and_cache_control_never_reach_gemini() -> None:
    raw = orjson.dumps(_encode("system"))
    assert b"x-anthropic-billing-header" not in raw
    assert b"cache_control" not in raw
    assert b"ephemeral" not in raw


def test_roles_alternate_and_system_role_is_folded() -> None:
    contents = _encode("system")["contents"]
    roles = [content["role"] for content in contents]
    assert roles == ["user", "model", "user"]
    assert contents[2]["parts"] == [
        {"text": "<system-reminder>Be terse.</system-reminder>"},
        {"text": "Next question?"},
        {"text": "<system-reminder>\nFinal note.\n</system-reminder>"},
    ]


def test_function_responses_follow_call_order_with_names() -> None:
    contents = _encode("tool_round_trip")["contents"]
    calls = [p["functionCall"] for p in contents[1]["parts"] if "functionCall" in p]
    responses = [p["functionResponse"] for p in contents[2]["parts"] if "functionResponse" in p]
    assert [c["name"] for c in calls] == ["Bash", "mcp__srv__do_thing"]
    assert [r["name"] for r in responses] == ["Bash", "mcp__srv__do_thing"]
    assert responses[1]["response"] == {"error": "thing failed"}
    # Our invented ids never go to Gemini; client ids do.
    assert calls[0]["id"] == responses[0]["id"] == "toolu_01AbCdEf"
    assert "id" not in calls[1]
    assert "id" not in responses[1]


def test_vertex_mode_sends_no_function_ids() -> None:
    raw = orjson.dumps(_encode("tool_round_trip", function_call_ids=False))
    assert b'"id"' not in raw


def test_signatures_only_from_gemini_thinking() -> None:
    contents = _encode("thinking")["contents"]
    signed = [(c["role"], p) for c in contents for p in c["parts"] if "thoughtSignature" in p]
    assert signed == [
        (
            "model",
            {"functionCall": {"name": "Bash", "args": {"command": "ls"}}, "thoughtSignature": "c2lnLWNhbGw="},
        ),
        ("model", {"text": "There is a.txt.", "thoughtSignature": "c2lnLXRyYWls"}),
    ]
    raw = orjson.dumps(contents)
    assert b"Claude's own reasoning" not in raw
    assert b"EqQB" not in raw
    assert b"redacted" not in raw


def test_tool_input_schema_is_not_modified() -> None:
    data = _load(GOLDEN / "encode" / "tools.json")
    request = decode_request(data["request"])
    before = orjson.dumps([tool.input_schema for tool in request.tools])
    encode_request(request, "gemini-2.5-flash")
    assert orjson.dumps([tool.input_schema for tool in request.tools]) == before


def test_renamed_tools_are_valid_gemini_names_and_map_back() -> None:
    body, context = encode_request(decode_request(_load(GOLDEN / "encode" / "tools.json")["request"]), "m")
    names = [d["name"] for d in body["tools"][0]["functionDeclarations"]]
    assert all(
        len(n) <= 64 and n.replace("_", "a").replace(".", "a").replace("-", "a").isalnum() for n in names
    )
    assert {context.client_tool_name(n) for n in names} >= {
        "mcp__my-server__search/files",
        "mcp__a_very_long_server_name_for_testing__a_very_long_tool_name_that_exceeds_limits",
    }


# --------------------------------------------------------------------------- decode properties


def test_thought_signature_round_trip_through_anthropic_format() -> None:
    """Gemini response -> Anthropic blocks (as a client sees them) -> next request -> Gemini again:
    the signature is back on the function call and the renamed tool has its Gemini name."""
    fixture = _load(GOLDEN / "decode" / "function_calls.json")
    context = GeminiContext(model="gemini-2.5-flash", tool_names=fixture["tool_names"])
    response = decode_response(orjson.dumps(fixture["response"]), context)
    tool_uses = [b for b in response.content if isinstance(b, ToolUseBlock)]
    assert [t.name for t in tool_uses] == ["Bash", "mcp__srv__do/thing"]
    next_request = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1000,
        "tools": [
            {
                "name": "Bash",
                "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}},
            },
            {"name": "mcp__srv__do/thing", "input_schema": {"type": "object", "properties": {}}},
        ],
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [encode_block(block) for block in response.content]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": t.id, "content": "ok"} for t in tool_uses],
            },
        ],
    }
    body, _ = encode_request(decode_request(orjson.loads(orjson.dumps(next_request))), "gemini-2.5-flash")
    model_parts = body["contents"][1]["parts"]
    assert model_parts == [
        {
            "functionCall": {"name": "Bash", "args": {"command": "git status", "timeout": 5000}},
            "thoughtSignature": "c2lnLWZjLTE=",
        },
        {"functionCall": {"name": "mcp__srv__do_thing", "args": {}, "id": "call_9f8e"}},
    ]
    responses = [p["functionResponse"] for p in body["contents"][2]["parts"]]
    assert [r["name"] for r in responses] == ["Bash", "mcp__srv__do_thing"]
    assert responses[1]["id"] == "call_9f8e"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not an object"),
        (b'{"usageMetadata": {"promptTokenCount": 3}}', "no candidates"),
    ],
)
def test_unreadable_responses_raise(body: bytes, message: str) -> None:
    with pytest.raises(UpstreamProtocolError, match=message):
        decode_response(body, GeminiContext(model="m"))


# --------------------------------------------------------------------------- stream properties


def _frame(chunk: dict[str, Any]) -> SSEFrame:
    data = orjson.dumps(chunk)
    return SSEFrame(event=None, data=data, raw=b"data: " + data + b"\r\n\r\n")


def test_truncated_stream_raises_instead_of_looking_complete() -> None:
    decoder = GeminiStreamDecoder(GeminiContext(model="m"), provider="gem")
    events = decoder.feed(_frame({"candidates": [{"content": {"parts": [{"text": "Half an ans"}]}}]}))
    assert [type(e) for e in events] == [MessageStart, BlockStart, BlockDelta]
    with pytest.raises(UpstreamProtocolError, match="gem: Gemini stream ended without a finishReason"):
        decoder.finish()


def test_empty_stream_raises() -> None:
    with pytest.raises(UpstreamProtocolError):
        GeminiStreamDecoder(GeminiContext(model="m")).finish()


def test_bad_chunk_raises_protocol_error() -> None:
    decoder = GeminiStreamDecoder(GeminiContext(model="m"))
    with pytest.raises(UpstreamProtocolError, match="unreadable"):
        decoder.feed(SSEFrame(event=None, data=b'{"candidates": [', raw=b""))


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [(429, "RESOURCE_EXHAUSTED", UpstreamRateLimitError), (503, "UNAVAILABLE", UpstreamOverloadedError)],
)
def test_in_band_error_raises_mapped_error(code: int, status: str, error: type[Exception]) -> None:
    decoder = GeminiStreamDecoder(GeminiContext(model="m"), provider="gem")
    decoder.feed(_frame({"candidates": [{"content": {"parts": [{"text": "Hi"}]}}]}))
    with pytest.raises(error, match=f"gem: {status}: quota"):
        decoder.feed(_frame({"error": {"code": code, "message": "quota", "status": status}}))


def test_stream_text_is_reassembled_exactly() -> None:
    context = GeminiContext(**_load(GOLDEN / "stream" / "transcript.json"))
    events = _decode_stream((GOLDEN / "stream" / "transcript.sse").read_bytes(), context, piece=3)
    text = "".join(
        e.delta.text for e in events if isinstance(e, BlockDelta) and isinstance(e.delta, TextDelta)
    )
    thinking = "".join(
        e.delta.thinking for e in events if isinstance(e, BlockDelta) and isinstance(e.delta, ThinkingDelta)
    )
    calls = [
        orjson.loads(e.delta.partial_json)
        for e in events
        if isinstance(e, BlockDelta) and isinstance(e.delta, InputJsonDelta)
    ]
    assert text == "Voilà : un café ☕ prêt 🇫🇷."
    assert thinking.endswith("a greeting in French, then to run a command.")
    assert calls == [{"command": "echo ok", "timeout": 1000}, {"what": "naïve"}]
    final = events[-2]
    assert isinstance(final, MessageDelta)
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.cache_read_input_tokens, final.usage.output_tokens) == (
        1304,
        4096,
        181,
    )


def test_stream_and_whole_response_build_the_same_blocks() -> None:
    fixture = _load(GOLDEN / "decode" / "function_calls.json")
    context = GeminiContext(model="gemini-2.5-flash", tool_names=fixture["tool_names"])
    whole = decode_response(orjson.dumps(fixture["response"]), context)
    decoder = GeminiStreamDecoder(context)
    events = decoder.feed(_frame(fixture["response"])) + decoder.finish()
    assert_anthropic_grammar(events)
    starts = [e.block for e in events if isinstance(e, BlockStart)]
    assert [type(b) for b in starts] == [type(b) for b in whole.content]
    assert [b.id for b in starts if isinstance(b, ToolUseBlock)] == [
        b.id for b in whole.content if isinstance(b, ToolUseBlock)
    ]
