"""The Gemini front codec (our own generateContent surface): golden files, plus what goldens cannot show.

- tests/golden/gemini/front_decode: ``<case>.json`` is a client's request (model, stream, body),
  ``<case>.expected.json`` the canonical request.
- tests/golden/gemini/front_encode and front_stream: the Anthropic goldens' responses and streams
  (tests/golden/anthropic/{responses,streams}) as a Gemini client gets them.

Set CCROUTER_REGEN_GOLDEN=1 to rewrite the expected files.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import orjson
import pytest

from ccrouter.codecs.anthropic.codec import decode_response
from ccrouter.codecs.anthropic.stream import AnthropicStreamDecoder
from ccrouter.codecs.gemini.codec import encode_request
from ccrouter.codecs.gemini.front import (
    ENVELOPE_PREFIX,
    decode_request,
    encode_response,
    error_envelope,
    signature_for,
)
from ccrouter.codecs.gemini.front_stream import GeminiFrontStreamEncoder
from ccrouter.codecs.gemini.schema import json_schema_from_gemini
from ccrouter.codecs.sse import SSEParser
from ccrouter.errors import RequestError
from ccrouter.messages import (
    MessageDelta,
    MessagesResponse,
    MessageStart,
    MessageStop,
    StreamError,
    StreamEvent,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from golden import assert_golden

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
FRONT = GOLDEN / "gemini"


def _cases(folder: Path, suffix: str) -> list[str]:
    return sorted(p.name[: -len(suffix)] for p in folder.glob(f"*{suffix}") if ".expected" not in p.name)


def _request_json(request: Any) -> dict[str, Any]:
    data = dataclasses.asdict(request)
    data.pop("received")
    data.pop("shared_parts")
    return orjson.loads(orjson.dumps(data))


@pytest.mark.parametrize("case", _cases(FRONT / "front_decode", ".json"))
def test_decode_golden(case: str) -> None:
    fixture = orjson.loads((FRONT / "front_decode" / f"{case}.json").read_bytes())
    request = decode_request(fixture["body"], fixture["model"], stream=fixture["stream"])
    assert_golden(FRONT / "front_decode" / f"{case}.expected.json", _request_json(request))


@pytest.mark.parametrize("case", _cases(GOLDEN / "anthropic" / "responses", ".json"))
def test_encode_golden(case: str) -> None:
    response = decode_response((GOLDEN / "anthropic" / "responses" / f"{case}.json").read_bytes())
    body = orjson.loads(encode_response(response, "gemini-2.5-pro", thoughts=True))
    assert_golden(FRONT / "front_encode" / f"{case}.expected.json", body)


def _anthropic_events(case: str) -> list[StreamEvent]:
    parser = SSEParser()
    decoder = AnthropicStreamDecoder()
    events: list[StreamEvent] = []
    for frame in parser.feed((GOLDEN / "anthropic" / "streams" / f"{case}.sse").read_bytes()):
        events.extend(decoder.feed(frame))
    for frame in parser.flush():
        events.extend(decoder.feed(frame))
    events.extend(decoder.finish())
    return events


def _sse_chunks(data: bytes) -> list[Any]:
    return [orjson.loads(frame.data) for frame in SSEParser().feed(data)]


# ``<case>.canonical.sse`` is the Anthropic test's re-encoding of ``<case>.sse``, not an input.
STREAMS = [case for case in _cases(GOLDEN / "anthropic" / "streams", ".sse") if "." not in case]


@pytest.mark.parametrize("case", STREAMS)
def test_stream_golden(case: str) -> None:
    events = _anthropic_events(case)
    encoder = GeminiFrontStreamEncoder("gemini-2.5-pro", thoughts=True)
    sse = b"".join(encoder.encode(event) for event in events)
    assert_golden(FRONT / "front_stream" / f"{case}.expected.json", _sse_chunks(sse))
    # The JSON array framing holds the same chunks.
    array = GeminiFrontStreamEncoder("gemini-2.5-pro", thoughts=True, sse=False)
    assert orjson.loads(b"".join(array.encode(event) for event in events)) == _sse_chunks(sse)


def test_streamed_and_whole_answers_agree() -> None:
    """The chunks' parts, joined, are the non-streamed response's parts (text runs merged)."""
    events = _anthropic_events("thinking_text_tool")
    encoder = GeminiFrontStreamEncoder("m", thoughts=True)
    chunks = _sse_chunks(b"".join(encoder.encode(event) for event in events))
    streamed = [part for chunk in chunks for part in chunk["candidates"][0]["content"]["parts"]]
    assert any("functionCall" in part for part in streamed)
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["totalTokenCount"] > 0
    signed = [part for part in streamed if "thoughtSignature" in part]
    assert len(signed) == 1
    assert signed[0]["thoughtSignature"].startswith(ENVELOPE_PREFIX)


def test_thinking_survives_the_round_trip() -> None:
    """An Anthropic model's signed thinking goes to the client inside a thoughtSignature and comes back
    as the same block; Gemini's own signature goes back to a Gemini upstream unchanged."""
    anthropic = ThinkingBlock(thinking="Plan: call the tool.", signature="EqQBsig==", origin="anthropic")
    call = ToolUseBlock(id="toolu_1", name="get_weather", input={"city": "Paris"})
    response = MessagesResponse(id="msg_1", model="m", content=[anthropic, call], stop_reason="tool_use")
    model_turn = orjson.loads(encode_response(response, "m"))["candidates"][0]["content"]
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "Weather?"}]},
            model_turn,
            {
                "role": "user",
                "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "sun"}}}],
            },
        ]
    }
    request = decode_request(body, "m", stream=False)
    assert request.messages[1].content == [anthropic, call]
    result = request.messages[2].content[0]
    assert isinstance(result, ToolResultBlock)
    assert result.tool_use_id == "toolu_1"

    gemini = ThinkingBlock(signature="ccr:gemini:R2VtU2ln", origin="gemini")
    assert signature_for(gemini) == "R2VtU2ln"
    body["contents"][1]["parts"][0]["thoughtSignature"] = "R2VtU2ln"
    upstream, _ = encode_request(decode_request(body, "m", stream=False), "gemini-2.5-flash")
    assert upstream["contents"][1]["parts"][0]["thoughtSignature"] == "R2VtU2ln"


def test_thoughts_only_when_asked() -> None:
    thinking = ThinkingBlock(thinking="secret plan", signature="ccr:openai", origin="openai")
    response = MessagesResponse(id="chatcmpl-9", model="m", content=[thinking, TextBlock(text="Hi")])
    hidden = orjson.loads(encode_response(response, "m"))
    assert hidden["candidates"][0]["content"]["parts"] == [{"text": "Hi"}]
    assert hidden["responseId"] == "9"
    shown = orjson.loads(encode_response(response, "m", thoughts=True))
    assert shown["candidates"][0]["content"]["parts"][0] == {"text": "secret plan", "thought": True}


def test_stream_error_closes_the_array() -> None:
    encoder = GeminiFrontStreamEncoder("m", sse=False)
    out = encoder.encode(MessageStart(id="msg_x", model="m"))
    out += encoder.encode(StreamError(error_type="overloaded_error", message="upstream went away"))
    assert orjson.loads(out) == [error_envelope(503, "upstream went away")]
    ended = GeminiFrontStreamEncoder("m", sse=False)
    whole = b"".join(
        ended.encode(e) for e in (MessageStart(id="a", model="m"), MessageDelta("max_tokens"), MessageStop())
    )
    assert orjson.loads(whole)[0]["candidates"][0]["finishReason"] == "MAX_TOKENS"


def test_error_envelope_names_googles_status() -> None:
    assert error_envelope(529, "busy") == {"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}
    assert error_envelope(401, "no")["error"]["status"] == "UNAUTHENTICATED"
    assert error_envelope(429, "slow")["error"]["status"] == "RESOURCE_EXHAUSTED"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"contents": []}, "contents"),
        ({"contents": [{"role": "system", "parts": []}]}, "contents[0].role"),
        ({"contents": [{"parts": [{"inlineData": {"mimeType": "image/png"}}]}]}, "inlineData"),
        (
            {
                "contents": [{"parts": [{"text": "x"}]}],
                "generationConfig": {"thinkingConfig": {"thinkingBudget": -5}},
            },
            "thinkingBudget",
        ),
        (
            {
                "contents": [{"parts": [{"text": "x"}]}],
                "generationConfig": {"thinkingConfig": {"thinkingLevel": "max"}},
            },
            "thinkingLevel",
        ),
        (
            {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"stopSequences": "END"}},
            "stopSequences",
        ),
        ({"contents": [{"parts": [{"text": "x"}]}], "tools": {"functionDeclarations": []}}, "tools"),
        ({"contents": [{"role": "model", "parts": [{"functionCall": {"name": "f", "args": [1]}}]}]}, "args"),
        ({"contents": [{"parts": [{"functionResponse": {"name": "f", "response": "ok"}}]}]}, "response"),
    ],
)
def test_bad_requests_name_the_field(body: dict[str, Any], needle: str) -> None:
    with pytest.raises(RequestError) as caught:
        decode_request(body, "m", stream=False)
    assert needle in caught.value.message


def test_json_schema_from_gemini() -> None:
    schema = {
        "type": "OBJECT",
        "properties": {
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "nullable": True},
            "mode": {"type": "STRING", "enum": ["a", "b"], "format": "enum"},
            "any": {"anyOf": [{"type": "INTEGER"}, {"type": "BOOLEAN"}]},
        },
        "required": ["mode"],
        "propertyOrdering": ["mode", "tags"],
    }
    assert json_schema_from_gemini(schema) == {
        "type": "object",
        "properties": {
            "tags": {"type": ["array", "null"], "items": {"type": "string"}},
            "mode": {"type": "string", "enum": ["a", "b"], "format": "enum"},
            "any": {"anyOf": [{"type": "integer"}, {"type": "boolean"}]},
        },
        "required": ["mode"],
        "propertyOrdering": ["mode", "tags"],
    }
