"""The Anthropic wire adapter: what it sends (URL, headers, body) and how it reads errors."""

from __future__ import annotations

import orjson
import pytest

from ccrouter.codecs.anthropic.codec import AnthropicStreamDecoder, decode_request
from ccrouter.config import ProviderConfig
from ccrouter.providers.anthropic import AnthropicAdapter
from ccrouter.providers.base import WireAdapter

KEY = "sk-ant-api03-secret-value"


def adapter(**fields: object) -> AnthropicAdapter:
    return AnthropicAdapter(
        ProviderConfig.model_validate({"name": "anthropic", "type": "anthropic", **fields})
    )


def request_body() -> dict[str, object]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1000,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
        "context_management": {"edits": []},
    }


@pytest.mark.parametrize(
    ("base_url", "url"),
    [
        (None, "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com", "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com/", "https://api.anthropic.com/v1/messages"),
        ("https://proxy.example/anthropic/v1", "https://proxy.example/anthropic/v1/messages"),
        ("https://proxy.example/anthropic/v1/", "https://proxy.example/anthropic/v1/messages"),
        ("http://127.0.0.1:9000/v1/messages", "http://127.0.0.1:9000/v1/messages"),
    ],
)
def test_url(base_url: str | None, url: str) -> None:
    call = adapter(base_url=base_url).build(decode_request(request_body()), "claude-x", stream=False)
    assert call.url == url


def test_build_headers_and_body() -> None:
    wire: WireAdapter = adapter(api_key=KEY, headers={"x-custom": "1", "anthropic-version": "2024-01-01"})
    request = decode_request(request_body())
    request.betas = "interleaved-thinking-2025-05-14,context-management-2025-06-27"
    call = wire.build(request, "claude-sonnet-4-5-20250929", stream=False)
    assert call.headers == {
        "content-type": "application/json",
        "anthropic-version": "2024-01-01",  # configured headers override ours
        "x-api-key": KEY,
        "anthropic-beta": "interleaved-thinking-2025-05-14,context-management-2025-06-27",
        "x-custom": "1",
    }
    assert orjson.loads(call.body) == {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 1000,
        "stream": False,
        "messages": [{"role": "user", "content": "hi"}],
        "context_management": {"edits": []},
    }
    assert wire.wire == "anthropic"


def test_no_key_no_beta_headers() -> None:
    call = adapter().build(decode_request(request_body()), "m", stream=True)
    assert call.headers == {"content-type": "application/json", "anthropic-version": "2023-06-01"}
    assert orjson.loads(call.body)["stream"] is True


def test_parse_response_and_stream_decoder() -> None:
    wire = adapter(api_key=KEY)
    call = wire.build(decode_request(request_body()), "m", stream=False)
    body = (
        b'{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"ok"}],'
        b'"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":2}}'
    )
    response = wire.parse_response(body, call)
    assert response.id == "msg_1"
    assert response.usage.output_tokens == 2
    assert isinstance(wire.stream_decoder(call), AnthropicStreamDecoder)


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (
            400,
            b'{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: '
            b'210000 tokens > 200000 maximum"},"request_id":"req_1"}',
            "prompt is too long: 210000 tokens > 200000 maximum",
        ),
        (529, b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}', "Overloaded"),
        (502, b"<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
        (500, b"", "HTTP 500 with an empty body"),
        (500, b"x" * 5000, "x" * 500),
    ],
)
def test_error_message(status: int, body: bytes, message: str) -> None:
    text = adapter(api_key=KEY).error_message(status, body)
    assert text == message
    assert KEY not in text
