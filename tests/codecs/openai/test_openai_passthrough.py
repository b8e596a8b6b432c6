"""The OpenAI passthrough follows the canonical request: what was edited after decoding is encoded
again, the rest is the client's own body."""

from __future__ import annotations

from typing import Any

from ccrouter.codecs.openai.chat import decode_request, encode_request
from ccrouter.codecs.openai.dialect import Dialect
from ccrouter.codecs.openai.front import include_usage
from ccrouter.messages import Message, TextBlock, ToolChoice


def _body() -> dict[str, Any]:
    return {
        "model": "gpt-4o",
        "max_tokens": 100,
        "temperature": 0.3,
        "stop": ["END"],
        "messages": [
            {"role": "system", "content": "Be brief.", "name": "policy"},
            {"role": "user", "content": "hi"},
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}, "x": 1}],
        "logprobs": True,
    }


def _sent(request: Any) -> dict[str, Any]:
    body, _ = encode_request(request, "m", stream=False, dialect=Dialect())
    return body


def test_nothing_changed_is_the_clients_body() -> None:
    body = _body()
    sent = _sent(decode_request(body))
    assert sent == {**body, "model": "m"}
    assert sent["messages"] is body["messages"]
    assert sent["tools"] is body["tools"]


def test_edited_fields_are_encoded_again_and_the_others_kept() -> None:
    body = _body()
    request = decode_request(body)
    request.temperature = None
    request.stop_sequences = []
    request.messages = [Message("user", [TextBlock("hello")])]
    sent = _sent(request)
    assert "temperature" not in sent
    assert "stop" not in sent
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello"},
    ]
    assert sent["tools"] is body["tools"]  # unchanged: the client's, with its own fields
    assert sent["logprobs"] is True


def test_edited_tools_are_encoded_again() -> None:
    request = decode_request(_body())
    request.tool_choice = ToolChoice(type="any")
    sent = _sent(request)
    assert sent["tool_choice"] == "required"
    assert sent["tools"] == [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    ]


def test_include_usage_reads_the_clients_stream_options() -> None:
    assert include_usage(decode_request({**_body(), "stream_options": {"include_usage": True}}))
    assert not include_usage(decode_request(_body()))
