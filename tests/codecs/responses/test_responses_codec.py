"""OpenAI Responses API codec (upstream direction): golden files for requests, responses and streams,
plus what goldens cannot show (the wire checked against the OpenAI SDK's types, protocol errors).

Goldens live in tests/golden/responses/{requests,responses,streams}: ``<case>.json`` (or ``.sse``) is
the input, ``<case>.expected.json`` the output. CCROUTER_REGEN_GOLDEN=1 rewrites the expected files.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import orjson
import pytest
from openai.types.responses import Response as SDKResponse
from openai.types.responses import ResponseInputItemParam, ResponseStreamEvent
from pydantic import TypeAdapter

from ccrouter.codecs.anthropic.codec import decode_request
from ccrouter.codecs.openai.toolnames import ToolNames
from ccrouter.codecs.responses.request import MIN_OUTPUT_TOKENS, encode_request, is_reasoning_model
from ccrouter.codecs.responses.response import decode_response
from ccrouter.codecs.responses.stream import ResponsesStreamDecoder
from ccrouter.codecs.sse import SSEFrame, SSEParser
from ccrouter.errors import (
    UpstreamOverloadedError,
    UpstreamProtocolError,
    UpstreamRateLimitError,
    UpstreamStatusError,
)
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
    ThinkingBlock,
)
from golden import GoldenDir, names_for, with_wire_names

RESPONSES = GoldenDir("responses")
GOLDEN: Path = RESPONSES.root


def _sse_cases() -> list[str]:
    return sorted(path.stem for path in (GOLDEN / "streams").glob("*.sse"))


def _plain(obj: Any) -> Any:
    data = dataclasses.asdict(obj)
    for key in ("received", "raw_body", "shared_parts", "raw"):
        data.pop(key, None)
    return orjson.loads(orjson.dumps(data))


def _event_json(event: StreamEvent) -> dict[str, Any]:
    return {"event": type(event).__name__, **_plain(event)}


def _encoded(case: str) -> tuple[dict[str, Any], ToolNames]:
    fixture = RESPONSES.load("requests", case)
    request = decode_request(fixture["anthropic"])
    body, names = encode_request(request, fixture["model"], stream=fixture["stream"])
    return dict(body), names


def decode_stream(raw: bytes, *, piece: int = 7, provider: str = "") -> list[StreamEvent]:
    """Feed a transcript in ``piece``-byte slices, as a network would (UTF-8 characters split)."""
    parser = SSEParser()
    decoder = ResponsesStreamDecoder(ToolNames(id_prefix="t"), model="fallback", provider=provider)
    events: list[StreamEvent] = []
    for start in range(0, len(raw), piece):
        for frame in parser.feed(raw[start : start + piece]):
            events.extend(decoder.feed(frame))
    for frame in parser.flush():
        events.extend(decoder.feed(frame))
    return events + decoder.finish()


def assert_anthropic_grammar(events: list[StreamEvent]) -> None:
    """MessageStart, strictly sequential blocks, thinking closed by a signature, then MessageDelta
    and MessageStop (or a StreamError last)."""
    assert isinstance(events[0], MessageStart)
    body = events[1:]
    if isinstance(body[-1], StreamError):
        body = body[:-1]
    else:
        assert isinstance(body[-2], MessageDelta)
        assert isinstance(body[-1], MessageStop)
        body = body[:-2]
    open_index: int | None = None
    last = -1
    thinking_signed = True
    for event in body:
        if isinstance(event, BlockStart):
            assert open_index is None
            assert event.index == last + 1
            open_index = last = event.index
            thinking_signed = not isinstance(event.block, ThinkingBlock)
        elif isinstance(event, BlockDelta):
            assert event.index == open_index
            thinking_signed = thinking_signed or isinstance(event.delta, SignatureDelta)
        elif isinstance(event, BlockStop):
            assert event.index == open_index
            assert thinking_signed
            open_index = None
        else:
            raise AssertionError(f"unexpected {event!r} inside the message")
    if not isinstance(events[-1], StreamError):
        assert open_index is None


# =========================================================================== requests


@pytest.mark.parametrize("case", RESPONSES.cases("requests"))
def test_request_golden(case: str) -> None:
    body, _ = _encoded(case)
    RESPONSES.check("requests", case, body)


@pytest.mark.parametrize("case", RESPONSES.cases("requests"))
def test_request_is_a_valid_stateless_responses_request(case: str) -> None:
    """Every input item is one the SDK's ``ResponseInputItemParam`` accepts; never stored, never a
    continuation; every function call answered, right after the calls of its turn."""
    body, _ = _encoded(case)
    assert body["store"] is False
    assert "previous_response_id" not in body
    assert "conversation" not in body
    assert body["max_output_tokens"] >= MIN_OUTPUT_TOKENS
    validator: TypeAdapter[Any] = TypeAdapter(ResponseInputItemParam)
    calls: list[str] = []
    for item in body["input"]:
        if item.get("role") == "assistant":
            # The SDK types an earlier assistant message with output_text parts as an output message
            # (id and status required); the API takes it without them, as Codex sends it.
            item = {**item, "id": "msg_x", "status": "completed"}
        validator.validate_python(item, strict=False)
        if item["type"] == "function_call":
            calls.append(item["call_id"])
            orjson.loads(item["arguments"])
        elif item["type"] == "function_call_output":
            assert item["call_id"] == calls.pop(0)
        elif item.get("role") != "assistant":
            assert not calls, "a function call was left without its output"
    assert not calls
    for tool in body.get("tools", ()):
        assert tool["strict"] is False
        assert tool["parameters"]["type"] == "object"


def test_reasoning_models() -> None:
    assert all(map(is_reasoning_model, ["o3-pro", "o1-pro", "gpt-5-codex", "codex-mini-latest", "openai/o3"]))
    assert not any(map(is_reasoning_model, ["gpt-4.1", "gpt-5-chat-latest", "gpt-4o"]))


# =========================================================================== responses


@pytest.mark.parametrize("case", RESPONSES.cases("responses"))
def test_response_golden(case: str) -> None:
    fixture = RESPONSES.load("responses", case)
    names = names_for(fixture["tools"])
    body = orjson.dumps(with_wire_names(fixture["body"], names))
    response = decode_response(body, names, provider="p")
    assert response.raw_body == body
    assert response.raw_format == "openai_responses"
    RESPONSES.check("responses", case, _plain(response))


@pytest.mark.parametrize(
    ("error", "kind", "status"),
    [
        ({"code": "rate_limit_exceeded", "message": "slow down"}, UpstreamRateLimitError, 429),
        ({"code": "server_error", "message": "boom"}, UpstreamStatusError, 500),
        ({"code": "invalid_prompt", "message": "flagged"}, UpstreamStatusError, 400),
        ({"code": "invalid_image_url", "message": "bad image"}, UpstreamStatusError, 400),
        ({"code": "service_unavailable", "message": "busy"}, UpstreamOverloadedError, 529),
        (None, UpstreamStatusError, 500),
    ],
)
def test_a_failed_response_raises_what_its_code_stands_for(
    error: dict[str, str] | None, kind: type[Exception], status: int
) -> None:
    body = orjson.dumps({"id": "resp_1", "status": "failed", "error": error, "output": []})
    with pytest.raises(kind) as caught:
        decode_response(body, ToolNames(), provider="p")
    assert isinstance(caught.value, UpstreamStatusError)
    assert caught.value.status == status
    assert caught.value.message.startswith("p: ")


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1]", b'{"status": "in_progress", "output": []}', b'{"status": "completed"}'],
    ids=["not-json", "not-object", "unfinished", "no-output"],
)
def test_an_unreadable_response_is_a_protocol_error(body: bytes) -> None:
    with pytest.raises(UpstreamProtocolError):
        decode_response(body, ToolNames(), provider="p")


# =========================================================================== streams


@pytest.mark.parametrize("case", _sse_cases())
@pytest.mark.parametrize("piece", [7, 100_000])
def test_stream_golden(case: str, piece: int) -> None:
    events = decode_stream((GOLDEN / "streams" / f"{case}.sse").read_bytes(), piece=piece, provider="p")
    assert_anthropic_grammar(events)
    if piece == 7:  # the same events however the bytes were split: one golden
        RESPONSES.check("streams", case, [_event_json(event) for event in events])
    else:
        expected = orjson.loads((GOLDEN / "streams" / f"{case}.expected.json").read_bytes())
        assert [_event_json(event) for event in events] == expected


@pytest.mark.parametrize("case", [name for name in _sse_cases() if name.startswith("fake_")])
def test_the_fakes_stream_is_the_sdks(case: str) -> None:
    """Each event of the transcripts made by the shipped fake parses as the SDK's event type."""
    parser = SSEParser()
    validator: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
    frames = parser.feed((GOLDEN / "streams" / f"{case}.sse").read_bytes()) + parser.flush()
    for frame in frames:
        event = validator.validate_json(frame.data)
        assert event.type == frame.event


@pytest.mark.parametrize("case", [name for name in RESPONSES.cases("responses") if name.startswith("fake_")])
def test_the_fakes_response_is_the_sdks(case: str) -> None:
    SDKResponse.model_validate(RESPONSES.load("responses", case)["body"])


def _frames(*events: dict[str, Any]) -> list[SSEFrame]:
    return [SSEFrame(event=event.get("type"), data=orjson.dumps(event), raw=b"") for event in events]


def _feed_all(frames: list[SSEFrame]) -> list[StreamEvent]:
    decoder = ResponsesStreamDecoder(ToolNames(), model="m", provider="p")
    events: list[StreamEvent] = []
    for frame in frames:
        events += decoder.feed(frame)
    return events + decoder.finish()


CREATED = {
    "type": "response.created",
    "response": {"id": "resp_1", "model": "o3-pro", "status": "in_progress"},
}
MESSAGE = {"type": "message", "id": "msg_1", "role": "assistant", "content": []}
ADDED = {"type": "response.output_item.added", "output_index": 0, "item": MESSAGE}
PART = {
    "type": "response.content_part.added",
    "output_index": 0,
    "item_id": "msg_1",
    "content_index": 0,
    "part": {"type": "output_text", "text": ""},
}
TEXT = {
    "type": "response.output_text.delta",
    "output_index": 0,
    "item_id": "msg_1",
    "content_index": 0,
    "delta": "hi",
}
DONE = {"type": "response.output_item.done", "output_index": 0, "item": MESSAGE}
COMPLETED = {"type": "response.completed", "response": {"id": "resp_1", "status": "completed", "output": []}}


def test_a_failure_before_any_content_raises_so_dispatch_can_fail_over() -> None:
    failed = {
        "type": "response.failed",
        "response": {"status": "failed", "error": {"code": "server_error", "message": "x"}},
    }
    with pytest.raises(UpstreamStatusError) as caught:
        _feed_all(_frames(CREATED, {"type": "response.in_progress"}, ADDED, failed))
    assert caught.value.status == 500
    error = {"type": "error", "code": "rate_limit_exceeded", "message": "Rate limit reached", "param": None}
    with pytest.raises(UpstreamRateLimitError):
        _feed_all(_frames(CREATED, error))


@pytest.mark.parametrize(
    ("frames", "fragment"),
    [
        ([CREATED, TEXT], "never added"),
        ([CREATED, ADDED, PART, TEXT, DONE, TEXT], "already done"),
        ([CREATED, ADDED, ADDED], "added twice"),
        ([CREATED, ADDED, DONE, DONE], "done twice"),
        (
            [
                CREATED,
                ADDED,
                {"type": "response.function_call_arguments.delta", "output_index": 0, "delta": "{"},
            ],
            "for a message item",
        ),
        (
            [
                CREATED,
                {"type": "response.output_item.added", "output_index": 0, "item": {"type": "function_call"}},
            ],
            "name",
        ),
        ([CREATED, {"type": "response.output_text.delta", "delta": "x"}], "names no output item"),
        ([CREATED, ADDED, PART, TEXT], "truncated"),
        ([], "truncated"),
    ],
    ids=[
        "delta-unknown-item",
        "delta-after-done",
        "added-twice",
        "done-twice",
        "wrong-kind",
        "nameless-call",
        "no-index",
        "no-terminal",
        "empty",
    ],
)
def test_out_of_order_or_cut_streams_are_protocol_errors(frames: list[dict[str, Any]], fragment: str) -> None:
    with pytest.raises(UpstreamProtocolError, match=fragment) as caught:
        _feed_all(_frames(*frames))
    assert caught.value.message.startswith("p: ")


@pytest.mark.parametrize(
    "data",
    [b"{not json", b"[1, 2]", b'{"no": "type"}', b'{"type": 3}'],
    ids=["json", "list", "untyped", "type"],
)
def test_malformed_events_are_protocol_errors(data: bytes) -> None:
    decoder = ResponsesStreamDecoder(ToolNames(), provider="p")
    decoder.feed(_frames(CREATED)[0])
    with pytest.raises(UpstreamProtocolError):
        decoder.feed(SSEFrame(event=None, data=data, raw=b""))


def test_an_sse_event_name_stands_for_a_missing_type() -> None:
    decoder = ResponsesStreamDecoder(ToolNames(), provider="p")
    frame = SSEFrame(
        event="response.completed", data=orjson.dumps({"response": COMPLETED["response"]}), raw=b""
    )
    events = decoder.feed(frame)
    assert isinstance(events[-1], MessageStop)


def test_nothing_after_the_terminal_event_counts() -> None:
    events = _feed_all(
        _frames(CREATED, ADDED, PART, TEXT, DONE, COMPLETED, TEXT, {"type": "error", "message": "late"})
    )
    assert isinstance(events[-1], MessageStop)
    assert [e.delta.text for e in events if isinstance(e, BlockDelta)] == ["hi"]  # type: ignore[union-attr]


def test_a_second_content_part_is_a_second_text_block() -> None:
    second = {**PART, "content_index": 1}
    events = _feed_all(
        _frames(CREATED, ADDED, PART, TEXT, second, {**TEXT, "content_index": 1}, DONE, COMPLETED)
    )
    starts = [event for event in events if isinstance(event, BlockStart)]
    assert [type(start.block) for start in starts] == [TextBlock, TextBlock]


def test_a_new_item_closes_an_item_left_open() -> None:
    call = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "Read", "arguments": ""}
    added_call = {"type": "response.output_item.added", "output_index": 1, "item": call}
    arguments = {
        "type": "response.function_call_arguments.delta",
        "output_index": 1,
        "item_id": "fc_1",
        "delta": '{"a":',
    }
    completed = {**COMPLETED, "response": {"status": "completed"}}
    events = _feed_all(_frames(CREATED, ADDED, PART, TEXT, added_call, arguments, completed))
    assert_anthropic_grammar(events)
    json = "".join(
        e.delta.partial_json
        for e in events
        if isinstance(e, BlockDelta) and isinstance(e.delta, InputJsonDelta)
    )
    assert orjson.loads(json) == {"a": None}  # cut arguments still end as one JSON object
    delta = next(e for e in events if isinstance(e, MessageDelta))
    assert delta.stop_reason == "tool_use"
