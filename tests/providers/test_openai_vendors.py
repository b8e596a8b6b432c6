"""OpenAI-compatible vendor profiles and the OpenAI wire adapter, alone and through the fake upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from ccrouter.builtins.vendors import VENDORS
from ccrouter.codecs.anthropic.body import decode_request_body
from ccrouter.codecs.body import DecodeCache
from ccrouter.codecs.openai.chat import Dialect
from ccrouter.config import ProviderConfig
from ccrouter.errors import (
    ConfigError,
    UpstreamConnectionError,
    UpstreamProtocolError,
    UpstreamRateLimitError,
)
from ccrouter.messages import (
    BlockDelta,
    InputJsonDelta,
    Message,
    MessageDelta,
    MessagesRequest,
    StreamEvent,
    TextBlock,
    ThinkingConfig,
    Tool,
    ToolUseBlock,
)
from ccrouter.providers.http import HttpProvider, new_session
from ccrouter.providers.openai import OpenAIAdapter, OpenAICallContext
from ccrouter.providers.openai_vendors import vendor_for
from ccrouter.testing import FakeUpstream, Fault, Reply, ToolCall
from ccrouter.testing.claude_code import claude_code_request


def config(**fields: Any) -> ProviderConfig:
    return ProviderConfig(**{"name": "p", "type": "openai", **fields})


# --------------------------------------------------------------------------- vendor selection


@pytest.mark.parametrize(
    ("fields", "vendor", "base_url"),
    [
        ({"vendor": "deepseek"}, "deepseek", "https://api.deepseek.com/v1"),
        ({"vendor": "groq"}, "groq", "https://api.groq.com/openai/v1"),
        ({"vendor": "openrouter"}, "openrouter", "https://openrouter.ai/api/v1"),
        ({"vendor": "ollama"}, "ollama", "http://localhost:11434/v1"),
        ({"vendor": "github"}, "github", "https://models.github.ai/inference"),
        ({"vendor": "openai"}, "openai", "https://api.openai.com/v1"),
        ({"base_url": "https://api.groq.com/openai/v1/"}, "groq", "https://api.groq.com/openai/v1"),
        ({"base_url": "https://openrouter.ai/api/v1"}, "openrouter", "https://openrouter.ai/api/v1"),
        ({"base_url": "http://127.0.0.1:11434/v1"}, "ollama", "http://127.0.0.1:11434/v1"),
        (
            {"base_url": "https://models.inference.ai.azure.com"},
            "github",
            "https://models.inference.ai.azure.com",
        ),
        (
            {"name": "my-deepseek", "base_url": "https://proxy.example/v1"},
            "deepseek",
            "https://proxy.example/v1",
        ),
        ({"name": "local", "base_url": "http://localhost:8000/v1"}, "generic", "http://localhost:8000/v1"),
        ({"vendor": "generic", "base_url": "http://vllm:8000/v1"}, "generic", "http://vllm:8000/v1"),
        ({"vendor": "deepseek", "base_url": "https://eu.example/v1"}, "deepseek", "https://eu.example/v1"),
    ],
)
def test_vendor_for(fields: dict[str, Any], vendor: str, base_url: str) -> None:
    profile = vendor_for(config(**fields), VENDORS)
    assert (profile.name, profile.base_url) == (vendor, base_url)


def test_unknown_vendor_without_base_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'p': vendor 'gemini' needs a base_url"):
        vendor_for(config(vendor="gemini"), VENDORS)


@pytest.mark.parametrize(
    ("vendor", "model", "expected"),
    [
        (
            "openai",
            "o3",
            Dialect(max_tokens_field="max_completion_tokens", drop_sampling=True, drop_stop=True),
        ),
        (
            "openai",
            "o4-mini",
            Dialect(max_tokens_field="max_completion_tokens", drop_sampling=True, drop_stop=True),
        ),
        (
            "openai",
            "gpt-5",
            Dialect(max_tokens_field="max_completion_tokens", drop_sampling=True, drop_stop=True),
        ),
        (
            "openai",
            "gpt-5.1-codex",
            Dialect(max_tokens_field="max_completion_tokens", drop_sampling=True, drop_stop=True),
        ),
        (
            "openai",
            "gpt-5-chat-latest",
            Dialect(max_tokens_field="max_completion_tokens", reasoning_style="none"),
        ),
        ("openai", "gpt-4o", Dialect(max_tokens_field="max_completion_tokens", reasoning_style="none")),
        (
            "github",
            "openai/o3",
            Dialect(max_tokens_field="max_completion_tokens", drop_sampling=True, drop_stop=True),
        ),
        ("github", "meta/Llama-3.3-70B-Instruct", Dialect(reasoning_style="none")),
        (
            "deepseek",
            "deepseek-chat",
            Dialect(max_tokens_cap=8192, echo_reasoning_content=True, reasoning_style="none"),
        ),
        (
            "deepseek",
            "deepseek-reasoner",
            Dialect(max_tokens_cap=65536, echo_reasoning_content=True, reasoning_style="none"),
        ),
        (
            "groq",
            "llama-3.3-70b-versatile",
            Dialect(strip_schema_keys=frozenset({"$schema", "$id", "$comment"}), reasoning_style="none"),
        ),
        ("groq", "openai/gpt-oss-120b", Dialect(strip_schema_keys=frozenset({"$schema", "$id", "$comment"}))),
        (
            "openrouter",
            "anthropic/claude-sonnet-4.5",
            Dialect(reasoning_style="openrouter", keep_cache_control=True),
        ),
        ("openrouter", "openai/gpt-4o", Dialect(reasoning_style="openrouter")),
        ("ollama", "qwen3:8b", Dialect()),
        ("generic", "anything", Dialect()),
    ],
)
def test_dialect_selection(vendor: str, model: str, expected: Dialect) -> None:
    assert VENDORS[vendor].dialect(model) == expected


def test_headers() -> None:
    assert VENDORS["openai"].headers("sk-x") == {"Authorization": "Bearer sk-x"}
    assert VENDORS["ollama"].headers(None) == {}
    assert VENDORS["openrouter"].headers("k") == {
        "X-Title": "ccrouter",
        "Authorization": "Bearer k",
    }
    assert VENDORS["github"].headers("ghp_x")["X-GitHub-Api-Version"] == "2022-11-28"


# --------------------------------------------------------------------------- adapter, pure


def request(**fields: Any) -> MessagesRequest:
    base: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "messages": [Message(role="user", content=[TextBlock(text="hi")])],
    }
    return MessagesRequest(**{**base, **fields})


def test_build_uses_vendor_url_headers_and_dialect() -> None:
    adapter = OpenAIAdapter(config(vendor="deepseek", api_key="sk-secret", headers={"X-Extra": "1"}))
    call = adapter.build(request(), "deepseek-chat", stream=True)
    assert call.url == "https://api.deepseek.com/v1/chat/completions"
    assert call.headers == {
        "Content-Type": "application/json",
        "Authorization": "Bearer sk-secret",
        "X-Extra": "1",
        "Accept": "text/event-stream",
    }
    body = orjson.loads(call.body)
    assert body["max_tokens"] == 8192
    assert body["model"] == "deepseek-chat"
    assert body["stream"] is True
    assert isinstance(call.context, OpenAICallContext)
    assert call.context.dialect.echo_reasoning_content


@pytest.mark.parametrize("vendor", ["openai", "deepseek", "groq", "openrouter"])
def test_build_from_shared_history_is_the_uncached_build(vendor: str) -> None:
    """Claude Code's turns decoded through one DecodeCache: later builds take history and tools from
    the adapter's memo, and send the bytes a build without it sends."""
    adapter, fresh = OpenAIAdapter(config(vendor=vendor, api_key="k")), OpenAIAdapter(config(vendor=vendor))
    cache = DecodeCache()
    body = claude_code_request()
    for number in range(4):
        raw = orjson.dumps(body)
        for _ in range(2):
            call = adapter.build(decode_request_body(raw, cache), "anthropic/claude-x", stream=True)
            uncached = fresh.build(decode_request_body(raw), "anthropic/claude-x", stream=True)
            assert call.body == uncached.body
        next_turn = {"role": "assistant", "content": [{"type": "text", "text": f"done {number}"}]}
        body = {**body, "messages": [*body["messages"], next_turn, {"role": "user", "content": "more"}]}


def test_build_for_o3_and_parse_maps_names_back() -> None:
    adapter = OpenAIAdapter(config(vendor="openai", api_key="k"))
    long_name = "mcp__" + "x" * 70
    tools = [Tool(name=long_name, input_schema={"type": "object", "properties": {}})]
    call = adapter.build(
        request(tools=tools, temperature=0.3, thinking=ThinkingConfig(type="enabled", budget_tokens=2000)),
        "o3",
        stream=False,
    )
    body = orjson.loads(call.body)
    assert "temperature" not in body
    assert body["max_completion_tokens"] == 32000
    assert body["reasoning_effort"] == "low"
    wire = body["tools"][0]["function"]["name"]
    answer = {
        "id": "chatcmpl-1",
        "choices": [
            {
                "message": {"tool_calls": [{"id": "call_1", "function": {"name": wire, "arguments": "{}"}}]},
                "finish_reason": "tool_calls",
            }
        ],
    }
    response = adapter.parse_response(orjson.dumps(answer), call)
    assert response.content == [ToolUseBlock(id="call_1", name=long_name)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"error":{"message":"Incorrect API key provided: sk-proj-abc***xyz.",'
            b'"type":"invalid_request_error"}}',
            "Incorrect API key provided: [redacted] (invalid_request_error)",
        ),
        (
            b'{"error": "model \\"qwen9\\" not found, try pulling it first"}',
            'model "qwen9" not found, try pulling it first',
        ),
        (b'[{"error": {"code": 400, "message": "Bad schema", "status": "INVALID_ARGUMENT"}}]', "Bad schema"),
        (b"<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
        (b"", "HTTP 502"),
        (b'{"message": "echoing my-secret-key and Bearer abc.def"}', "echoing [redacted] and [redacted]"),
    ],
)
def test_error_message(body: bytes, message: str) -> None:
    adapter = OpenAIAdapter(config(vendor="groq", api_key="my-secret-key"))
    assert adapter.error_message(502, body) == message


# --------------------------------------------------------------------------- through the fake upstream


@pytest.fixture
async def provider(fake: FakeUpstream) -> AsyncIterator[HttpProvider]:
    cfg = config(name="fake", vendor="generic", base_url=fake.url + "/v1", api_key="k")
    http = HttpProvider(cfg, OpenAIAdapter(cfg), new_session())
    try:
        yield http
    finally:
        await http.aclose()


async def collect(provider: HttpProvider, req: MessagesRequest) -> list[StreamEvent]:
    return [event async for batch in provider.stream(req, "fake-model") for event in batch]


async def test_fake_upstream_complete_and_stream_tool_call(
    fake: FakeUpstream, provider: HttpProvider
) -> None:
    call = ToolCall(name="Bash", arguments={"command": "echo hello"}, id="call_x")
    fake.script(
        Reply(text="Running.", tool_calls=[call]), Reply(text="Running.", tool_calls=[call], chunk_size=3)
    )
    response = await provider.complete(request(), "fake-model")
    assert response.stop_reason == "tool_use"
    assert response.content[-1] == ToolUseBlock(id="call_x", name="Bash", input={"command": "echo hello"})
    events = await collect(provider, request(stream=True))
    fragments = [
        e.delta.partial_json
        for e in events
        if isinstance(e, BlockDelta) and isinstance(e.delta, InputJsonDelta)
    ]
    assert len(fragments) > 3
    assert orjson.loads("".join(fragments)) == {"command": "echo hello"}
    final = next(e for e in events if isinstance(e, MessageDelta))
    assert final.stop_reason == "tool_use"
    assert final.usage.output_tokens > 0


async def test_fake_upstream_cut_stream_raises(fake: FakeUpstream, provider: HttpProvider) -> None:
    fake.script(Fault("drop_mid_stream", reply=Reply(text="a long answer " * 20), after_chunks=3))
    # Cut inside the HTTP body: the transport sees it; cut between frames: the decoder does.
    with pytest.raises((UpstreamConnectionError, UpstreamProtocolError)):
        await collect(provider, request(stream=True))


async def test_fake_upstream_rate_limit_message(fake: FakeUpstream, provider: HttpProvider) -> None:
    fake.script(Fault("status", status=429))
    with pytest.raises(UpstreamRateLimitError, match=r"^fake: "):
        await provider.complete(request(), "fake-model")


async def test_fake_upstream_broken_arguments_end_valid(fake: FakeUpstream, provider: HttpProvider) -> None:
    fake.script(Reply(tool_calls=[ToolCall(name="Edit", arguments='{"path": "a", "n": [1, 2,', id="c")]))
    events = await collect(provider, request(stream=True))
    fragments = [
        e.delta.partial_json
        for e in events
        if isinstance(e, BlockDelta) and isinstance(e.delta, InputJsonDelta)
    ]
    assert orjson.loads("".join(fragments)) == {"path": "a", "n": [1, 2]}
