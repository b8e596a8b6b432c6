"""The Responses front codec: golden files for requests (Responses body -> canonical), responses
(canonical -> Response object) and streams (canonical events -> Responses SSE events), every output
also parsed by the OpenAI SDK's own types; and the rules goldens cannot show (what is refused).

Goldens live in tests/golden/responses/{front_requests,front_responses,front_streams}: a fixture
holds the input, ``<case>.expected.json`` the exact output. Regenerate with CCROUTER_REGEN_GOLDEN=1
and review the diff.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import orjson
import pydantic
import pytest
from openai.types.responses import Response, ResponseStreamEvent

from ccrouter.codecs.responses.front import decode_body, decode_request, encode_response
from ccrouter.codecs.responses.front_stream import ResponsesStreamEncoder
from ccrouter.codecs.sse import SSEParser
from ccrouter.errors import RequestError
from ccrouter.messages import (
    BlockDelta,
    BlockStart,
    BlockStop,
    ContentBlock,
    Delta,
    InputJsonDelta,
    MessageDelta,
    MessagesResponse,
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
from golden import GoldenDir

GOLDEN = GoldenDir("responses")
EVENTS = pydantic.TypeAdapter(ResponseStreamEvent)
CREATED = 1700000000


def canonical(obj: Any) -> Any:
    data = dataclasses.asdict(obj)
    for key in ("received", "raw_body", "shared_parts"):
        data.pop(key, None)
    return data


# =========================================================================== requests


@pytest.mark.parametrize("case", GOLDEN.cases("front_requests"))
def test_request_golden(case: str) -> None:
    body = GOLDEN.load("front_requests", case)
    request = decode_request(body)
    assert request.received is not None
    assert request.received.format == "responses"
    assert request.received.body is body
    assert decode_body(orjson.dumps(body)) == request
    GOLDEN.check("front_requests", case, canonical(request))


def _body(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "input": "hi", **fields}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"input": "hi"}, "model: required"),
        ({"model": "m"}, "input: required"),
        ({"model": "m", "input": ""}, "input: required"),
        ({"model": "m", "input": []}, "input: required"),
        ({"model": "m", "input": ["hi"]}, r"input\[0\]: expected an object"),
        ({"model": "m", "input": [{"role": "bot", "content": "x"}]}, r"input\[0\].role"),
        ({"model": "m", "input": [{"role": "user", "content": 3}]}, r"input\[0\].content"),
        ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_text"}]}]}, "text: required"),
        ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image"}]}]}, "image_url"),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "file store",
        ),
        ({"model": "m", "input": [{"type": "function_call", "name": "f"}]}, "call_id"),
        ({"model": "m", "input": [{"type": "function_call", "call_id": "c"}]}, "name"),
        ({"model": "m", "input": [{"type": "function_call_output", "call_id": "c"}]}, "output: required"),
        ({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}, "no conversation state"),
        ({"model": "m", "input": [{"type": "computer_call", "id": "x"}]}, "computer_call"),
        ({"model": "m", "input": [{"role": "system", "content": "only"}]}, "no user or assistant"),
        (_body(previous_response_id="resp_1"), "previous_response_id is not supported"),
        (_body(conversation="conv_1"), "conversation is not supported"),
        (_body(prompt={"id": "pmpt_1"}), "prompt"),
        (_body(background=True), "background"),
        (_body(instructions=["x"]), "instructions"),
        (_body(max_output_tokens=0), "max_output_tokens"),
        (_body(max_output_tokens=True), "max_output_tokens"),
        (_body(temperature="hot"), "temperature"),
        (_body(stream="yes"), "stream"),
        (_body(parallel_tool_calls=1), "parallel_tool_calls"),
        (_body(reasoning="high"), "reasoning"),
        (_body(reasoning={"effort": "huge"}), "reasoning.effort"),
        (_body(metadata={"a": 1}), "metadata"),
        (_body(text="plain"), "text"),
        (_body(text={"format": {"type": "json_schema", "name": "x", "schema": {}}}), "json_schema"),
        (_body(text={"format": {"type": "json_object"}}), "json_object"),
        (_body(tools={}), "tools: expected an array"),
        (_body(tools=["f"]), r"tools\[0\]: expected an object"),
        (_body(tools=[{"type": "web_search"}]), "web_search=disabled"),
        (_body(tools=[{"type": "file_search"}]), "'file_search' are not supported"),
        (_body(tools=[{"type": "custom", "name": "apply_patch"}]), "'custom'"),
        (_body(tools=[{"name": "f"}]), "None"),
        (_body(tools=[{"type": "function"}]), r"tools\[0\].name"),
        (_body(tools=[{"type": "function", "name": "f", "parameters": []}]), "parameters"),
        (_body(tools=[{"type": "namespace", "tools": []}]), r"tools\[0\].name"),
        (_body(tools=[{"type": "namespace", "name": "n", "tools": {}}]), r"tools\[0\].tools"),
        (_body(tools=[{"type": "namespace", "name": "n", "tools": [{"type": "web_search"}]}]), "web_search"),
        (_body(tool_choice=1), "tool_choice"),
        (_body(tool_choice={"type": "function"}), "tool_choice.name"),
        (_body(tool_choice={"type": "file_search"}), "file_search"),
    ],
)
def test_request_errors(body: dict[str, Any], message: str) -> None:
    with pytest.raises(RequestError, match=message) as caught:
        decode_request(body)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("raw", "message"),
    [(b"", "empty"), (b"{", "not valid JSON"), (b"[]", "JSON object"), (b"[" * 100 + b"]" * 100, "JSON")],
)
def test_malformed_bodies(raw: bytes, message: str) -> None:
    with pytest.raises(RequestError, match=message):
        decode_body(raw)


def test_deep_nesting_is_refused() -> None:
    deep = b'{"model": "m", "input": "hi", "metadata": ' + b'{"a":' * 300 + b"1" + b"}" * 301
    with pytest.raises(RequestError):
        decode_body(deep)


def test_store_and_unknown_fields_are_ignored() -> None:
    request = decode_request(_body(store=True, include=["x"], truncation="auto", service_tier="flex", zz=1))
    assert request.extra == {}
    assert request.max_tokens == 4096


def test_allowed_tools_choice() -> None:
    required = {"type": "allowed_tools", "mode": "required", "tools": []}
    choice = decode_request(_body(tool_choice=required)).tool_choice
    assert choice is not None
    assert choice.type == "any"
    auto = decode_request(_body(tool_choice={"type": "allowed_tools", "mode": "auto"})).tool_choice
    assert auto is not None
    assert auto.type == "auto"


def test_reasoning_round_trips_as_signed_thinking() -> None:
    """A reasoning item we gave out comes back as thinking with its signature."""
    item = {"type": "reasoning", "id": "rs", "summary": [{"type": "summary_text", "text": "t"}]}
    foreign = {**item, "encrypted_content": "ccr:openai"}
    bodies = [{**item, "encrypted_content": "sig"}, foreign, item]
    found = []
    for reasoning in bodies:
        request = decode_request(_body(input=[{"role": "user", "content": "q"}, reasoning]))
        block = request.messages[1].content[0]
        assert isinstance(block, ThinkingBlock)
        found.append((block.thinking, block.signature, block.origin))
    assert found == [("t", "sig", "anthropic"), ("t", "ccr:openai", "openai"), ("t", None, "responses")]


# =========================================================================== responses


def block_from(data: dict[str, Any]) -> ContentBlock:
    kinds: dict[str, Any] = {
        "text": TextBlock,
        "thinking": ThinkingBlock,
        "tool_use": ToolUseBlock,
        "other": OtherBlock,
    }
    block: ContentBlock = kinds[data["type"]](**{k: v for k, v in data.items() if k != "type"})
    return block


def response_from(data: dict[str, Any]) -> MessagesResponse:
    return MessagesResponse(
        id=data["id"],
        model=data["model"],
        content=[block_from(block) for block in data["content"]],
        stop_reason=data["stop_reason"],
        usage=Usage(**data["usage"]),
    )


@pytest.mark.parametrize("case", GOLDEN.cases("front_responses"))
def test_response_golden(case: str) -> None:
    fixture = GOLDEN.load("front_responses", case)
    request = decode_request(fixture["request"])
    body = orjson.loads(encode_response(response_from(fixture["response"]), request, created_at=CREATED))
    Response.model_validate(body)  # the SDK reads every field
    GOLDEN.check("front_responses", case, body)


# =========================================================================== streams


def delta_from(data: dict[str, Any]) -> Delta:
    kinds: dict[str, Any] = {
        "text_delta": TextDelta,
        "thinking_delta": ThinkingDelta,
        "input_json_delta": InputJsonDelta,
        "signature_delta": SignatureDelta,
    }
    delta: Delta = kinds[data["type"]](**{k: v for k, v in data.items() if k != "type"})
    return delta


def event_from(data: dict[str, Any]) -> StreamEvent:
    fields = {key: value for key, value in data.items() if key != "event"}
    if "block" in fields:
        fields["block"] = block_from(fields["block"])
    if "delta" in fields:
        fields["delta"] = delta_from(fields["delta"])
    if "usage" in fields:
        fields["usage"] = Usage(**fields["usage"])
    classes = (MessageStart, BlockStart, BlockDelta, BlockStop, MessageDelta, MessageStop, Ping, StreamError)
    event: StreamEvent = {cls.__name__: cls for cls in classes}[data["event"]](**fields)
    return event


def frames_of(data: bytes) -> list[Any]:
    """Each frame's data, checked against its ``event:`` name and the SDK's event types."""
    out = []
    for frame in SSEParser().feed(data):
        payload = orjson.loads(frame.data)
        assert frame.event == payload["type"]
        EVENTS.validate_python(payload)
        out.append(payload)
    assert [item["sequence_number"] for item in out] == list(range(len(out)))
    return out


def _random_ids(data: bytes) -> bytes:
    # Without a message_start the response has a random id: named alike for the golden.
    return re.sub(rb"(resp|msg|fc|rs)_[0-9a-f]{24}", rb"\1_RANDOM", data)


@pytest.mark.parametrize("case", GOLDEN.cases("front_streams"))
def test_stream_golden(case: str) -> None:
    fixture = GOLDEN.load("front_streams", case)
    encoder = ResponsesStreamEncoder(decode_request(fixture["request"]), created_at=CREATED)
    data = b"".join(encoder.encode(event_from(item)) for item in fixture["events"])
    assert data.endswith(b"\n\n")
    assert b"[DONE]" not in data
    GOLDEN.check("front_streams", case, frames_of(_random_ids(data)))


def test_stream_ends_once() -> None:
    """After the terminal event nothing more is written (an error after completion included)."""
    encoder = ResponsesStreamEncoder(decode_request(_body(stream=True)), created_at=CREATED)
    encoder.encode(MessageStart(id="msg_1", model="m"))
    assert b"response.completed" in encoder.encode(MessageStop())
    assert encoder.encode(StreamError(error_type="api_error", message="late")) == b""
    assert encoder.encode(MessageStop()) == b""


def test_streamed_and_plain_answers_agree() -> None:
    """The final Response of a stream is the one the plain encoder gives for the same blocks."""
    fixture = GOLDEN.load("front_streams", "thinking_text_tools_usage")
    request = decode_request(fixture["request"])
    encoder = ResponsesStreamEncoder(request, created_at=CREATED)
    data = b"".join(encoder.encode(event_from(item)) for item in fixture["events"])
    final = frames_of(data)[-1]["response"]
    response = MessagesResponse(
        id="msg_s1",
        model="claude",
        content=[
            ThinkingBlock(thinking="Use the tool.", signature="sig-1"),
            TextBlock(text="Checking."),
            ToolUseBlock(id="toolu_a", name="get_weather", input={"city": "Paris"}),
            ToolUseBlock(id="toolu_b", name="noargs", input={}),
        ],
        stop_reason="tool_use",
        usage=Usage(input_tokens=20, cache_read_input_tokens=1000, output_tokens=42),
    )
    plain = orjson.loads(encode_response(response, request, created_at=CREATED))
    for item in final["output"]:
        if item["type"] == "function_call":
            item["arguments"] = orjson.dumps(orjson.loads(item["arguments"])).decode()
    assert final == plain
