"""Response ids follow the client's format whatever the upstream: ``msg_`` for Anthropic clients,
``chatcmpl-`` for OpenAI clients; checked on every response and stream golden of the other wires."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from ccrouter.codecs.anthropic import codec as anthropic
from ccrouter.codecs.anthropic.codec import AnthropicStreamDecoder, encode_event
from ccrouter.codecs.gemini import codec as gemini
from ccrouter.codecs.gemini.stream import GeminiContext
from ccrouter.codecs.ids import client_id
from ccrouter.codecs.openai import chat as openai_chat
from ccrouter.codecs.openai.stream import OpenAIStreamEncoder
from ccrouter.codecs.sse import SSEParser
from ccrouter.messages import MessagesResponse, MessageStart, StreamEvent
from golden import ROOT, GoldenDir, decode_openai_stream, names_for, sse_bytes, with_wire_names

OPENAI = GoldenDir("openai")
ANTHROPIC_ID = re.compile(r"msg_[A-Za-z0-9_-]+")
OPENAI_ID = re.compile(r"chatcmpl-[A-Za-z0-9_-]+")


@pytest.mark.parametrize(
    ("upstream", "prefix", "expected"),
    [
        ("chatcmpl-abc123", "msg_", "msg_abc123"),
        ("msg_01XFD", "msg_", "msg_01XFD"),
        ("msg_01XFD", "chatcmpl-", "chatcmpl-01XFD"),
        ("chatcmpl-9", "chatcmpl-", "chatcmpl-9"),
        ("gen-1733-xyz", "msg_", "msg_gen-1733-xyz"),  # OpenRouter's ids keep their own form
        ("gen-1733-xyz", "chatcmpl-", "chatcmpl-gen-1733-xyz"),
    ],
)
def test_client_id(upstream: str, prefix: str, expected: str) -> None:
    assert client_id(upstream, prefix) == expected


@pytest.mark.parametrize("upstream", ["", "msg_", "chatcmpl-"])
def test_client_id_is_fresh_for_an_empty_one(upstream: str) -> None:
    made = client_id(upstream, "msg_")
    assert ANTHROPIC_ID.fullmatch(made)
    assert made != client_id(upstream, "msg_")


def _openai_response(case: str) -> MessagesResponse:
    fixture = OPENAI.load("responses", case)
    names = names_for(fixture["tools"])
    return openai_chat.decode_response(
        orjson.dumps(with_wire_names(fixture["body"], names)), names, openai_chat.Dialect()
    )


@pytest.mark.parametrize("case", OPENAI.cases("responses"))
def test_an_openai_upstream_answers_anthropic_clients_with_msg_ids(case: str) -> None:
    response = _openai_response(case)
    assert response.id.startswith("chatcmpl-")  # the canonical id is the upstream's
    body = orjson.loads(anthropic.encode_response(response))
    assert body["id"] == "msg_" + response.id.removeprefix("chatcmpl-")


def _message_start_ids(data: bytes) -> list[str]:
    ids = []
    for frame in SSEParser().feed(data):
        event = orjson.loads(frame.data)
        if event.get("type") == "message_start":
            ids.append(event["message"]["id"])
    return ids


@pytest.mark.parametrize("case", OPENAI.cases("streams"))
def test_an_openai_upstream_stream_starts_with_a_msg_id(case: str) -> None:
    fixture = OPENAI.load("streams", case)
    names = names_for(fixture["tools"])
    events = decode_openai_stream(sse_bytes(with_wire_names(fixture["frames"], names)), names)
    ids = _message_start_ids(b"".join(encode_event(event) for event in events))
    assert len(ids) == 1
    assert ANTHROPIC_ID.fullmatch(ids[0])


@pytest.mark.parametrize(
    "case", sorted(p.stem for p in (ROOT / "gemini" / "decode").glob("*.json") if ".expected" not in p.name)
)
def test_a_gemini_upstream_gets_the_client_prefix_on_both_fronts(case: str) -> None:
    fixture = orjson.loads((ROOT / "gemini" / "decode" / f"{case}.json").read_bytes())
    context = GeminiContext(model=fixture["model"], tool_names=fixture["tool_names"])
    response = gemini.decode_response(orjson.dumps(fixture["response"]), context)
    assert ANTHROPIC_ID.fullmatch(orjson.loads(anthropic.encode_response(response))["id"])
    assert OPENAI_ID.fullmatch(orjson.loads(openai_chat.encode_response(response, "m"))["id"])


ANTHROPIC_GOLDEN = ROOT / "anthropic"


@pytest.mark.parametrize(
    "case",
    sorted(p.stem for p in (ANTHROPIC_GOLDEN / "responses").glob("*.json") if ".expected" not in p.name),
)
def test_an_anthropic_upstream_answers_openai_clients_with_chatcmpl_ids(case: str) -> None:
    response = anthropic.decode_response((ANTHROPIC_GOLDEN / "responses" / f"{case}.json").read_bytes())
    assert response.id.startswith("msg_")
    body = orjson.loads(openai_chat.encode_response(response, "m"))
    assert body["id"] == "chatcmpl-" + response.id.removeprefix("msg_")


def _stream_cases() -> list[str]:
    return sorted(
        p.stem for p in (ANTHROPIC_GOLDEN / "streams").glob("*.sse") if not p.name.endswith(".canonical.sse")
    )


@pytest.mark.parametrize("case", _stream_cases())
def test_an_anthropic_upstream_stream_reaches_openai_clients_with_chatcmpl_ids(case: str) -> None:
    data = (ANTHROPIC_GOLDEN / "streams" / f"{case}.sse").read_bytes()
    decoder = AnthropicStreamDecoder()
    events: list[StreamEvent] = []
    for frame in SSEParser().feed(data):
        events += decoder.feed(frame)
    start = next(event for event in events if isinstance(event, MessageStart))
    encoder = OpenAIStreamEncoder("m", include_usage=True)
    out = b"".join(encoder.encode(event) for event in events)
    ids = {
        orjson.loads(frame.data)["id"] for frame in SSEParser().feed(out) if frame.data.startswith(b'{"id"')
    }
    assert ids == {"chatcmpl-" + start.id.removeprefix("msg_")}


def test_anthropic_passthrough_keeps_the_upstream_bytes() -> None:
    raw = Path(ANTHROPIC_GOLDEN / "responses" / "text.json").read_bytes()
    assert anthropic.encode_response(anthropic.decode_response(raw)) == raw
