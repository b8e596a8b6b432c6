"""Anthropic Messages codec: request/response golden files, passthrough rules and request errors.

Goldens live in tests/golden/anthropic/. Regenerate with CCROUTER_REGEN_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import orjson
import pytest

from ccrouter.codecs.anthropic.codec import (
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    error_body,
)
from ccrouter.errors import RequestError, UpstreamProtocolError
from ccrouter.messages import (
    ImageBlock,
    Message,
    MessagesRequest,
    MessagesResponse,
    OtherBlock,
    Received,
    TextBlock,
    ThinkingBlock,
    ThinkingConfig,
    Tool,
    ToolChoice,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)
from golden import assert_golden

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "anthropic"
REQUEST_CASES = sorted(
    path.stem for path in (GOLDEN / "requests").glob("*.json") if ".expected" not in path.name
)
RESPONSE_CASES = sorted(
    path.stem for path in (GOLDEN / "responses").glob("*.json") if ".expected" not in path.name
)


def canonical(obj: Any) -> Any:
    """A dataclass as plain JSON data, without the raw copies (checked separately) and caching hints."""
    data = dataclasses.asdict(obj)
    for key in ("received", "raw_body", "shared_parts"):
        data.pop(key, None)
    return data


def load(name: str) -> dict[str, Any]:
    body = orjson.loads((GOLDEN / "requests" / f"{name}.json").read_bytes())
    assert isinstance(body, dict)
    return body


# --------------------------------------------------------------------------- request goldens


@pytest.mark.parametrize("case", REQUEST_CASES)
def test_request_golden(case: str) -> None:
    body = load(case)
    request = decode_request(body)
    assert request.received is not None
    assert request.received.body is body
    assert request.received.format == "anthropic"
    passthrough = encode_request(request, "upstream-model", stream=True)
    rebuilt = encode_request(dataclasses.replace(request, received=None), "upstream-model", stream=False)
    assert_golden(
        GOLDEN / "requests" / f"{case}.expected.json",
        {"canonical": canonical(request), "passthrough": passthrough, "rebuilt": rebuilt},
    )


def test_request_cases_present() -> None:
    # Guards against a glob that silently finds nothing.
    assert len(REQUEST_CASES) >= 15


def test_passthrough_shares_unchanged_parts_and_overrides_dispatch_fields() -> None:
    body = load("passthrough_unknown_fields")
    request = decode_request(body)
    request.max_tokens = 1234
    out = encode_request(request, "claude-opus-4-5-20251101", stream=False)
    assert out["model"] == "claude-opus-4-5-20251101"
    assert out["max_tokens"] == 1234
    assert out["stream"] is False
    assert out["messages"] is body["messages"]
    assert out["mcp_servers"] is body["mcp_servers"]
    assert out["some_future_field"] == {"nested": [1, 2, 3]}
    assert body["model"] == "claude-opus-4-5"
    assert body["max_tokens"] == 4000
    assert request.extra == {
        "service_tier": "auto",
        "container": "container_011CQUP6NHgz5x3Y8tbJBsb5",
        "mcp_servers": body["mcp_servers"],
        "some_future_field": {"nested": [1, 2, 3]},
    }


def test_passthrough_drops_only_foreign_or_unsigned_thinking() -> None:
    body = load("foreign_thinking")
    request = decode_request(body)
    origins = [
        block.origin for m in request.messages for block in m.content if isinstance(block, ThinkingBlock)
    ]
    assert origins == ["openai", "gemini", "anthropic", "anthropic"]
    out = encode_request(request, "m", stream=True)
    assert out["messages"] is not body["messages"]
    # The Gemini-only assistant turn is gone; untouched messages are the very same objects.
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user", "user", "assistant", "user"]
    assert out["messages"][0] is body["messages"][0]
    assert out["messages"][1]["content"] == [{"type": "text", "text": "a1"}]
    assert [b["type"] for b in out["messages"][4]["content"]] == ["thinking", "tool_use"]
    assert out["messages"][4]["content"][0]["thinking"] == "real"
    assert body["messages"][1]["content"][0]["signature"] == "ccr:openai"  # client body untouched


def test_a_signature_that_is_no_string_counts_as_unsigned() -> None:
    # Found by the fuzz tests: a list where the signature goes crashed the passthrough (a 500).
    body = {
        "model": "m",
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "t", "signature": ["x"]},
                    {"type": "text", "text": "a"},
                ],
            },
            {"role": "user", "content": "again"},
        ],
    }
    out = encode_request(decode_request(body), "m", stream=False)
    assert out["messages"][1]["content"] == [{"type": "text", "text": "a"}]


def test_passthrough_without_foreign_thinking_keeps_messages_list() -> None:
    body = load("thinking_enabled")
    out = encode_request(decode_request(body), "m", stream=False)
    assert out["messages"] is body["messages"]


def test_count_tokens_body_without_max_tokens() -> None:
    body = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]}
    request = decode_request(body, require_max_tokens=False)
    assert request.max_tokens == 0
    assert "max_tokens" not in encode_request(request, "m", stream=False)


def test_effort_and_output_config() -> None:
    request = decode_request(load("thinking_adaptive"))
    assert request.effort == "high"
    assert request.thinking == ThinkingConfig(type="adaptive")
    assert request.extra["output_config"] == {"effort": "high"}
    request = dataclasses.replace(request, received=None, effort="low")
    assert encode_request(request, "m", stream=True)["output_config"] == {"effort": "low"}


def test_metadata_user_id_json_string_kept_verbatim() -> None:
    body = load("metadata_user_id_json")
    request = decode_request(body)
    assert request.metadata is body["metadata"]
    rebuilt = encode_request(dataclasses.replace(request, received=None), "m", stream=True)
    assert rebuilt["metadata"]["user_id"] == body["metadata"]["user_id"]
    assert isinstance(rebuilt["metadata"]["user_id"], str)


def test_tool_schema_shared_not_copied() -> None:
    body = load("tools_schema_2020_12")
    request = decode_request(body)
    assert request.tools[0].input_schema is body["tools"][0]["input_schema"]
    rebuilt = encode_request(dataclasses.replace(request, received=None), "m", stream=False)
    assert rebuilt["tools"][1]["input_schema"] is body["tools"][1]["input_schema"]


@pytest.mark.parametrize(
    ("wire", "choice", "encoded"),
    [
        ({"type": "auto"}, ToolChoice(type="auto"), {"type": "auto"}),
        (
            {"type": "any", "disable_parallel_tool_use": True},
            ToolChoice(type="any", disable_parallel_tool_use=True),
            {"type": "any", "disable_parallel_tool_use": True},
        ),
        (
            {"type": "tool", "name": "Bash"},
            ToolChoice(type="tool", name="Bash"),
            {"type": "tool", "name": "Bash"},
        ),
        ({"type": "none"}, ToolChoice(type="none"), {"type": "none"}),
    ],
)
def test_tool_choice_variants(wire: dict[str, Any], choice: ToolChoice, encoded: dict[str, Any]) -> None:
    body = {"model": "m", "max_tokens": 10, "messages": [], "tool_choice": wire}
    request = decode_request(body)
    assert request.tool_choice == choice
    assert (
        encode_request(dataclasses.replace(request, received=None), "m", stream=False)["tool_choice"]
        == encoded
    )


def test_encode_from_foreign_canonical_request() -> None:
    """A request born in another wire format: built from canonical fields, its extra left out."""
    request = MessagesRequest(
        model="gpt-4o",
        max_tokens=3000,
        system=[TextBlock(text="sys", cache_control={"type": "ephemeral"}), TextBlock(text="")],
        messages=[
            Message(role="system", content=[TextBlock(text="note")]),
            Message(role="user", content=[TextBlock(text=""), ImageBlock(url="https://x/y.png")]),
            Message(
                role="assistant",
                content=[
                    ThinkingBlock(thinking="r", signature="ccr:openai", origin="openai"),
                    ToolUseBlock(id="call_1", name="f", input={"a": 1}),
                ],
            ),
            Message(
                role="user",
                content=[
                    ToolResultBlock(tool_use_id="call_1", content=[TextBlock(text="ok")], is_error=True)
                ],
            ),
            Message(role="assistant", content=[ThinkingBlock(thinking="only", origin="gemini")]),
        ],
        tools=[Tool(name="f", input_schema={}), Tool(name="web_search", server_type="web_search_20250305")],
        thinking=ThinkingConfig(type="enabled"),
        metadata={"user_id": "u1", "session": "not-anthropic"},
        extra={"n": 2},
        stop_sequences=["END"],
    )
    request.received = Received("openai", {}, request.copy())
    assert encode_request(request, "claude-x", stream=True) == {
        "model": "claude-x",
        "max_tokens": 3000,
        "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "note"}]},
            {
                "role": "user",
                "content": [{"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}],
            },
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}}],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "call_1",
                        "content": [{"type": "text", "text": "ok"}],
                        "is_error": True,
                    }
                ],
            },
        ],
        "stop_sequences": ["END"],
        "tools": [
            {"name": "f", "input_schema": {"type": "object", "properties": {}}},
            {"type": "web_search_20250305", "name": "web_search"},
        ],
        "thinking": {"type": "enabled", "budget_tokens": 1500},
        "metadata": {"user_id": "u1"},
        "stream": True,
    }


# --------------------------------------------------------------------------- request errors


def _base(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    body.update(fields)
    return {key: value for key, value in body.items() if value is not None}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_base(messages=None), "messages: Field required"),
        (_base(messages={"role": "user"}), "messages: Input should be a valid list"),
        (_base(max_tokens=None), "max_tokens: Field required"),
        (_base(max_tokens=0), "max_tokens: Input should be greater than or equal to 1"),
        (_base(max_tokens="100"), "max_tokens: Input should be a valid integer"),
        (_base(max_tokens=True), "max_tokens: Input should be a valid integer"),
        (_base(model=None), "model: Field required"),
        (_base(model=42), "model: Input should be a valid string"),
        (_base(messages=["hi"]), "messages.0: Input should be a valid dictionary"),
        (
            _base(messages=[{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}]),
            "messages.1.role: Input should be 'user' or 'assistant'",
        ),
        (_base(messages=[{"role": "user"}]), "messages.0.content: Field required"),
        (
            _base(messages=[{"role": "user", "content": 3}]),
            "messages.0.content: Input should be a valid string or list",
        ),
        (
            _base(
                messages=[{"role": "user", "content": "x"}] * 3
                + [{"role": "user", "content": [{"type": "text"}]}]
            ),
            "messages.3.content.0.text: Field required",
        ),
        (
            _base(
                messages=[
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "t", "name": "f", "input": 1}],
                    }
                ]
            ),
            "messages.0.content.0.input: Input should be a valid dictionary",
        ),
        (_base(system=[{"type": "image"}]), "system.0: Input should be a text block"),
        (_base(tools=[{"description": "no name", "input_schema": {}}]), "tools.0.name: Field required"),
        (_base(tools=[{"name": "f"}]), "tools.0.input_schema: Field required"),
        (
            _base(tool_choice={"type": "required"}),
            "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'",
        ),
        (_base(tool_choice={"type": "tool"}), "tool_choice.name: Field required"),
        (_base(thinking={"type": "enabled"}), "thinking.enabled.budget_tokens: Field required"),
        (
            _base(thinking={"mode": "on"}),
            "thinking.type: Input should be 'enabled', 'adaptive' or 'disabled'",
        ),
        (_base(metadata="u1"), "metadata: Input should be a valid dictionary"),
    ],
)
def test_decode_request_errors(body: dict[str, Any], message: str) -> None:
    with pytest.raises(RequestError) as info:
        decode_request(body)
    assert info.value.message == message
    assert info.value.status == 400
    assert info.value.error_type == "invalid_request_error"


# --------------------------------------------------------------------------- responses


@pytest.mark.parametrize("case", RESPONSE_CASES)
def test_response_golden(case: str) -> None:
    body = (GOLDEN / "responses" / f"{case}.json").read_bytes()
    response = decode_response(body)
    assert response.raw_body is body
    assert response.raw_format == "anthropic"
    assert encode_response(response) is body  # same-format passthrough: bytes untouched
    rebuilt = encode_response(dataclasses.replace(response, raw_body=None, raw_format=None))
    assert_golden(
        GOLDEN / "responses" / f"{case}.expected.json",
        {"canonical": canonical(response), "encoded": orjson.loads(rebuilt)},
    )


def test_response_usage_never_none() -> None:
    response = decode_response((GOLDEN / "responses" / "stop_sequence_nulls.json").read_bytes())
    assert response.usage == Usage(input_tokens=3, output_tokens=1)
    assert response.stop_reason == "stop_sequence"
    assert response.stop_sequence == "###"


def test_response_encode_exact_bytes_and_foreign_thinking_signature() -> None:
    response = MessagesResponse(
        id="msg_1",
        model="deepseek-reasoner",
        content=[
            ThinkingBlock(thinking="hmm", signature="ccr:gemini:c2ln", origin="gemini"),
            ThinkingBlock(thinking="no sig", origin="openai"),
            TextBlock(text="hi"),
            OtherBlock(raw={"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}),
        ],
        stop_reason="end_turn",
        usage=Usage(input_tokens=5, output_tokens=7, cache_read_input_tokens=2),
        raw_format="openai",
    )
    assert encode_response(response) == (
        b'{"id":"msg_1","type":"message","role":"assistant","model":"deepseek-reasoner","content":['
        b'{"type":"thinking","thinking":"hmm","signature":"ccr:gemini:c2ln"},'
        b'{"type":"thinking","thinking":"no sig","signature":"ccr:openai"},'
        b'{"type":"text","text":"hi"},'
        b'{"type":"server_tool_use","id":"s","name":"web_search","input":{}}],'
        b'"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":5,'
        b'"cache_creation_input_tokens":0,"cache_read_input_tokens":2,"output_tokens":7}}'
    )
    # Round trip: the Anthropic decoder recovers the origin from the signature.
    decoded = decode_response(encode_response(response))
    assert [b.origin for b in decoded.content if isinstance(b, ThinkingBlock)] == ["gemini", "openai"]


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b'{"type":"message"}', b'{"content":[{"type":"text"}]}']
)
def test_decode_response_protocol_errors(body: bytes) -> None:
    with pytest.raises(UpstreamProtocolError):
        decode_response(body)


def test_error_body() -> None:
    assert error_body("overloaded_error", "Overloaded") == (
        b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    )


def test_unknown_thinking_type_is_treated_as_adaptive() -> None:
    request = decode_request(_base(thinking={"type": "interleaved-future"}))
    assert request.thinking.type == "adaptive"
