"""OpenAI chat codec, non-streamed: golden files both ways, and the rules goldens cannot show.

Goldens live in tests/golden/openai/{requests,responses,front_requests,front_responses}. A fixture
holds the input, ``<case>.expected.json`` the exact output. Regenerate with CCROUTER_REGEN_GOLDEN=1
and review the diff. Upstream request fixtures are Anthropic bodies read by the Anthropic codec (the
real path of a Claude Code request); ``"WIRE:<name>"`` in a response fixture stands for the wire form
of a tool name.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import orjson
import pytest

from ccrouter.codecs.anthropic import codec as anthropic
from ccrouter.codecs.openai.chat import (
    Dialect,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    error_body,
)
from ccrouter.codecs.openai.toolnames import ToolNames
from ccrouter.errors import RequestError, UpstreamOverloadedError, UpstreamProtocolError, UpstreamStatusError
from ccrouter.messages import (
    Message,
    MessagesRequest,
    MessagesResponse,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    Usage,
)
from golden import GoldenDir, names_for, with_wire_names

OPENAI = GoldenDir("openai")
GOLDEN = OPENAI.root
cases = OPENAI.cases
load = OPENAI.load
assert_golden = OPENAI.check
LONG_NAME = "mcp__github_enterprise_server__create_or_update_repository_file_conten"


def dialect_from(data: dict[str, Any]) -> Dialect:
    fields = dict(data)
    if "strip_schema_keys" in fields:
        fields["strip_schema_keys"] = frozenset(fields["strip_schema_keys"])
    return Dialect(**fields)


def canonical(obj: Any) -> Any:
    data = dataclasses.asdict(obj)
    for key in ("received", "raw_body", "shared_parts"):
        data.pop(key, None)
    return data


def request_from(fixture: dict[str, Any]) -> MessagesRequest:
    if "openai" in fixture:
        return decode_request(fixture["openai"])
    return anthropic.decode_request(fixture["anthropic"])


def encoded(case: str) -> tuple[dict[str, Any], ToolNames]:
    fixture = load("requests", case)
    return encode_request(
        request_from(fixture),
        fixture["model"],
        stream=fixture.get("stream", False),
        dialect=dialect_from(fixture.get("dialect", {})),
    )


# =========================================================================== upstream requests


@pytest.mark.parametrize("case", cases("requests"))
def test_request_golden(case: str) -> None:
    body, _ = encoded(case)
    assert_golden("requests", case, body)


@pytest.mark.parametrize("case", cases("requests"))
def test_request_is_valid_openai(case: str) -> None:
    """Names and ids valid for OpenAI; every call answered by tool messages right after, in order; no
    system message but the first (chat templates reject one later, and a last one is a system turn)."""
    body, _ = encoded(case)
    assert all(message["role"] != "system" for message in body["messages"][1:])
    for tool in body.get("tools", ()):
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", tool["function"]["name"])
    messages = body["messages"]
    for position, message in enumerate(messages):
        calls = message.get("tool_calls") or []
        ids = [call["id"] for call in calls]
        for call in calls:
            assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", call["id"])
            assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", call["function"]["name"])
            assert isinstance(orjson.loads(call["function"]["arguments"]), dict)
        following = [m["tool_call_id"] for m in messages[position + 1 : position + 1 + len(ids)]]
        assert following == ids
        if message["role"] == "tool":
            assert messages[position - 1]["role"] in ("tool", "assistant")


def test_request_tool_names_map_back() -> None:
    body, names = encoded("tool_round_trip")
    wire = body["tools"][0]["function"]["name"]
    assert len(LONG_NAME) == 70
    assert len(wire) == 64
    assert wire != LONG_NAME
    assert names.from_wire_name(wire) == LONG_NAME
    weird = body["messages"][1]["tool_calls"][1]["id"]
    assert weird != "call:weird/id.with.chars"
    assert names.from_wire_id(weird) == "call:weird/id.with.chars"


def test_request_reuses_unchanged_schemas() -> None:
    """Hot path: a schema that needs no cleaning is the client's own dict, not a copy."""
    fixture = load("requests", "tool_choice_none")
    request = request_from(fixture)
    body, _ = encode_request(
        request, "m", stream=False, dialect=Dialect(strip_schema_keys=frozenset({"$schema"}))
    )
    assert body["tools"][0]["function"]["parameters"] is request.tools[0].input_schema


def test_passthrough_does_not_touch_the_client_body() -> None:
    fixture = load("requests", "passthrough_openai_o3")
    before = orjson.dumps(fixture["openai"])
    body, _ = encoded("passthrough_openai_o3")
    assert (
        body["messages"] is fixture["openai"]["messages"] or body["messages"] == fixture["openai"]["messages"]
    )
    assert orjson.dumps(load("requests", "passthrough_openai_o3")["openai"]) == before


def test_passthrough_drops_reasoning_when_dispatch_disabled_thinking() -> None:
    request = decode_request(
        {"model": "m", "reasoning_effort": "high", "messages": [{"role": "user", "content": "x"}]}
    )
    request = dataclasses.replace(
        request, thinking=dataclasses.replace(request.thinking, type="disabled"), effort=None
    )
    body, _ = encode_request(request, "gpt-4.1", stream=False, dialect=Dialect())
    assert "reasoning_effort" not in body
    assert body["model"] == "gpt-4.1"


# =========================================================================== upstream responses


@pytest.mark.parametrize("case", cases("responses"))
def test_response_golden(case: str) -> None:
    fixture = load("responses", case)
    names = names_for(fixture["tools"])
    body = orjson.dumps(with_wire_names(fixture["body"], names))
    response = decode_response(body, names, Dialect())
    assert response.raw_body == body
    assert response.raw_format == "openai"
    assert_golden("responses", case, canonical(response))


def test_response_maps_long_tool_name_back() -> None:
    names = names_for([LONG_NAME])
    wire = names.to_wire_name(LONG_NAME)
    body = {
        "id": "x",
        "choices": [
            {
                "message": {"tool_calls": [{"id": "c", "function": {"name": wire, "arguments": "{}"}}]},
                "finish_reason": "tool_calls",
            }
        ],
    }
    response = decode_response(orjson.dumps(body), names, Dialect())
    assert response.content == [ToolUseBlock(id="c", name=LONG_NAME, input={})]
    assert response.stop_reason == "tool_use"
    assert response.usage == Usage()


def test_response_error_body_with_status_200_raises_mapped_error() -> None:
    body = orjson.dumps({"error": {"code": 503, "message": "No endpoints available"}})
    with pytest.raises(UpstreamOverloadedError, match="No endpoints available"):
        decode_response(body, ToolNames(), Dialect(), provider="openrouter")
    body = orjson.dumps({"error": {"message": "bad", "type": "invalid_request_error"}})
    with pytest.raises(UpstreamStatusError) as info:
        decode_response(body, ToolNames(), Dialect())
    assert info.value.status == 400


@pytest.mark.parametrize("body", [b"not json", b"[1]", b'{"choices": []}', b'{"id": "x"}'])
def test_response_unreadable_raises_protocol_error(body: bytes) -> None:
    with pytest.raises(UpstreamProtocolError):
        decode_response(body, ToolNames(), Dialect(), provider="p")


# =========================================================================== front side


@pytest.mark.parametrize("case", cases("front_requests"))
def test_front_request_golden(case: str) -> None:
    body = load("front_requests", case)
    request = decode_request(body)
    assert request.received is not None
    assert request.received.body is body
    assert request.received.format == "openai"
    assert_golden("front_requests", case, canonical(request))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model: required"),
        ({"model": "", "messages": [{"role": "user", "content": "x"}]}, "model: required"),
        ({"model": "m"}, "messages: required"),
        ({"model": "m", "messages": []}, "messages: required"),
        ({"model": "m", "messages": "hi"}, "messages: required"),
        ({"model": "m", "messages": ["hi"]}, r"messages\[0\]: expected an object"),
        (
            {"model": "m", "messages": [{"role": "bot", "content": "x"}]},
            r"messages\[0\].role: expected one of",
        ),
        ({"model": "m", "messages": [{"role": "user", "content": 3}]}, r"messages\[0\].content"),
        ({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, r"messages\[0\].tool_call_id"),
        ({"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        ({"model": "m", "temperature": "hot", "messages": [{"role": "user", "content": "x"}]}, "temperature"),
        ({"model": "m", "stop": 3, "messages": [{"role": "user", "content": "x"}]}, "stop"),
        (
            {"model": "m", "reasoning_effort": "huge", "messages": [{"role": "user", "content": "x"}]},
            "reasoning",
        ),
        ({"model": "m", "tool_choice": 1, "messages": [{"role": "user", "content": "x"}]}, "tool_choice"),
        (
            {
                "model": "m",
                "tools": [{"type": "function", "function": {}}],
                "messages": [{"role": "user", "content": "x"}],
            },
            r"tools\[0\].function.name",
        ),
        (
            {"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}]},
            r"messages\[0\].tool_calls\[0\].id",
        ),
    ],
)
def test_front_request_errors(body: dict[str, Any], message: str) -> None:
    with pytest.raises(RequestError, match=message):
        decode_request(body)


def response_from(data: dict[str, Any]) -> MessagesResponse:
    """A canonical response from an Anthropic-shaped JSON description."""
    blocks: list[Any] = []
    for block in data["content"]:
        if block["type"] == "text":
            blocks.append(TextBlock(text=block["text"]))
        elif block["type"] == "thinking":
            blocks.append(ThinkingBlock(thinking=block["thinking"], signature=block["signature"]))
        else:
            blocks.append(ToolUseBlock(id=block["id"], name=block["name"], input=block["input"]))
    return MessagesResponse(
        id=data["id"],
        model=data["model"],
        content=blocks,
        stop_reason=data["stop_reason"],
        stop_sequence=data.get("stop_sequence"),
        usage=Usage(**data["usage"]),
    )


@pytest.mark.parametrize("case", cases("front_responses"))
def test_front_response_golden(case: str) -> None:
    fixture = load("front_responses", case)
    body = encode_response(response_from(fixture["response"]), fixture["model"], created=1700000000)
    assert_golden("front_responses", case, orjson.loads(body))


def test_front_response_passes_an_openai_body_through() -> None:
    raw = b'{"id":"chatcmpl-9","choices":[]}'
    response = MessagesResponse(id="x", model="m", content=[], raw_body=raw, raw_format="openai")
    assert encode_response(response, "client-model") is raw
    other = MessagesResponse(id="x", model="m", content=[], raw_body=b"{}", raw_format="anthropic")
    assert orjson.loads(encode_response(other, "client-model"))["object"] == "chat.completion"


def test_error_body_is_openai_envelope() -> None:
    assert orjson.loads(error_body("rate_limit_error", "slow down")) == {
        "error": {"message": "slow down", "type": "rate_limit_exceeded", "param": None, "code": None}
    }
    assert (
        orjson.loads(error_body("invalid_request_error", "bad"))["error"]["type"] == "invalid_request_error"
    )


def test_front_round_trip_through_upstream_encoder() -> None:
    """An OpenAI client's conversation, not passed through, encodes back to equivalent messages."""
    body = load("front_requests", "full")
    request = dataclasses.replace(decode_request(body), received=None)
    encoded_body, _ = encode_request(request, "gpt-4o", stream=False, dialect=Dialect())
    roles = [m["role"] for m in encoded_body["messages"]]
    # The system message inside the conversation is a user message in its place.
    assert roles == ["system", "user", "assistant", "tool", "tool", "user", "assistant", "user", "user"]
    assert encoded_body["messages"][3] == {"role": "tool", "tool_call_id": "call_1", "content": "18C"}
    assert encoded_body["reasoning_effort"] == "high"
    assert encoded_body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert encoded_body["parallel_tool_calls"] is False
    assert encoded_body["messages"][2]["tool_calls"][1]["function"]["arguments"] == '{"city":"Lyon"}'


def test_system_messages_inside_the_conversation_are_user_notes_in_place() -> None:
    request = MessagesRequest(
        model="m",
        max_tokens=10,
        messages=[
            Message(role="user", content=[TextBlock(text="a")]),
            Message(role="system", content=[TextBlock(text="keep")]),
        ],
    )
    body, _ = encode_request(request, "m", stream=False, dialect=Dialect())
    note = "<system-reminder>\nkeep\n</system-reminder>"
    assert body["messages"] == [{"role": "user", "content": "a"}, {"role": "user", "content": note}]
