"""The ``openai_responses`` provider type: the adapter over the real HTTP transport, against the fake."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from ccrouter.config import ProviderConfig, Settings
from ccrouter.errors import (
    UpstreamConnectionError,
    UpstreamProtocolError,
    UpstreamRateLimitError,
    UpstreamStatusError,
)
from ccrouter.messages import (
    BlockDelta,
    Message,
    MessageDelta,
    MessagesRequest,
    MessageStop,
    StreamError,
    StreamEvent,
    TextBlock,
    TextDelta,
    ThinkingBlock,
    ToolUseBlock,
)
from ccrouter.plugins import Registry, load_plugins
from ccrouter.providers.http import HttpProvider, new_session
from ccrouter.providers.openai import error_text
from ccrouter.providers.openai_responses import DEFAULT_BASE_URL, OpenAIResponsesAdapter
from ccrouter.testing import FakeUpstream, Fault, Reply, ToolCall

KEY = "sk-proj-responses-secret-0123456789"


def _config(base_url: str | None, **extra: object) -> ProviderConfig:
    return ProviderConfig.model_validate(
        {"name": "resp", "type": "openai_responses", "base_url": base_url, "api_key": KEY, **extra}
    )


@pytest.fixture
async def provider(fake: FakeUpstream) -> AsyncIterator[HttpProvider]:
    config = _config(fake.url + "/v1")
    provider = HttpProvider(config, OpenAIResponsesAdapter(config), new_session())
    try:
        yield provider
    finally:
        await provider.aclose()


def _request(text: str = "hi", **fields: object) -> MessagesRequest:
    return MessagesRequest(
        model="claude", messages=[Message("user", [TextBlock(text)])], max_tokens=256, **fields
    )  # type: ignore[arg-type]


async def _collect(provider: HttpProvider, request: MessagesRequest) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    async for batch in provider.stream(request, "gpt-5-codex"):
        assert batch
        events.extend(batch)
    return events


def test_the_type_is_registered_and_needs_no_base_url() -> None:
    registry = Registry.build(load_plugins(entry_points=False))
    assert "openai_responses" in registry.providers
    settings = Settings.model_validate(
        {
            "providers": [{"name": "o", "type": "openai_responses", "api_key": KEY, "models": ["o3-pro"]}],
            "router": {"default": "o,o3-pro"},
        },
        context={"registry": registry},
    )
    adapter = registry.providers["openai_responses"].adapter
    assert adapter is not None
    built = adapter(settings.providers[0], registry)
    assert isinstance(built, OpenAIResponsesAdapter)
    assert built.url == f"{DEFAULT_BASE_URL}/responses"


def test_build_posts_a_stateless_request_with_the_bearer_key() -> None:
    adapter = OpenAIResponsesAdapter(
        _config("https://proxy.example/v1/", headers={"OpenAI-Organization": "org"})
    )
    call = adapter.build(_request(), "o3-pro", stream=True)
    assert call.url == "https://proxy.example/v1/responses"
    assert call.headers["Authorization"] == f"Bearer {KEY}"
    assert call.headers["Accept"] == "text/event-stream"
    assert call.headers["OpenAI-Organization"] == "org"
    body = orjson.loads(call.body)
    assert body["store"] is False
    assert body["stream"] is True
    assert "previous_response_id" not in body
    assert "Accept" not in adapter.build(_request(), "o3-pro", stream=False).headers


def test_error_text_is_shared_and_redacts_the_key() -> None:
    body = orjson.dumps(
        {"error": {"message": f"Incorrect API key provided: {KEY}", "code": "invalid_api_key"}}
    )
    adapter = OpenAIResponsesAdapter(_config(None))
    message = adapter.error_message(401, body)
    assert KEY not in message
    assert message == error_text(401, body, KEY)
    assert "invalid_api_key" in message
    assert adapter.error_message(502, b"") == "HTTP 502"


async def test_complete_with_reasoning_text_and_a_tool_call(
    fake: FakeUpstream, provider: HttpProvider
) -> None:
    fake.script(
        Reply(
            text="Reading.",
            thinking="Plan.",
            tool_calls=[ToolCall("Read", {"path": "a"}, id="call_1")],
            input_tokens=10,
            output_tokens=7,
            cache_read_tokens=4,
        )
    )
    response = await provider.complete(_request(), "gpt-5-codex")
    assert [type(block) for block in response.content] == [ThinkingBlock, TextBlock, ToolUseBlock]
    assert response.stop_reason == "tool_use"
    assert (response.usage.input_tokens, response.usage.cache_read_input_tokens) == (10, 4)
    assert response.usage.output_tokens == 7
    sent = fake.requests[-1]
    assert sent.path == "/v1/responses"
    assert sent.headers["authorization"] == f"Bearer {KEY}"


async def test_stream(fake: FakeUpstream, provider: HttpProvider) -> None:
    fake.script(Reply(text="Hello there, streaming", chunk_size=4, stop="length"))
    events = await _collect(provider, _request())
    text = "".join(
        e.delta.text for e in events if isinstance(e, BlockDelta) and isinstance(e.delta, TextDelta)
    )
    assert text == "Hello there, streaming"
    delta = next(event for event in events if isinstance(event, MessageDelta))
    assert delta.stop_reason == "max_tokens"
    assert isinstance(events[-1], MessageStop)


async def test_a_429_carries_retry_after(fake: FakeUpstream, provider: HttpProvider) -> None:
    fake.script(Fault("status", status=429, retry_after=3))
    with pytest.raises(UpstreamRateLimitError) as caught:
        await provider.complete(_request(), "gpt-5-codex")
    assert caught.value.retry_after == 3
    assert caught.value.message.startswith("resp: ")


async def test_an_error_event_before_content_raises(fake: FakeUpstream, provider: HttpProvider) -> None:
    fake.script(Fault("stream_error", status=429, after_chunks=2, reply=Reply(text="never")))
    with pytest.raises(UpstreamRateLimitError):
        await _collect(provider, _request())


async def test_an_error_event_after_content_ends_the_stream(
    fake: FakeUpstream, provider: HttpProvider
) -> None:
    fake.script(
        Fault("stream_error", status=500, after_chunks=6, reply=Reply(text="some text here", chunk_size=2))
    )
    events = await _collect(provider, _request())
    assert isinstance(events[-1], StreamError)
    assert events[-1].error_type == "api_error"


CUT = (
    b'event: response.created\ndata: {"type":"response.created",'
    b'"response":{"id":"r","status":"in_progress"}}\n\n'
    b'event: response.output_item.added\ndata: {"type":"response.output_item.added","output_index":0,'
    b'"item":{"type":"message","id":"m","role":"assistant","content":[]}}\n\n'
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","output_index":0,'
    b'"item_id":"m","content_index":0,"delta":"half an ans"}\n\n'
)


@pytest.mark.parametrize(
    "fault",
    [
        Fault("bad_frame", after_chunks=5, reply=Reply(text="abcdefgh", chunk_size=2)),
        # A stream that ends cleanly, without response.completed.
        Fault("status", status=200, body=CUT, headers={"Content-Type": "text/event-stream"}),
    ],
    ids=["malformed", "truncated"],
)
async def test_a_broken_stream_is_a_protocol_error(
    fake: FakeUpstream, provider: HttpProvider, fault: Fault
) -> None:
    fake.script(fault)
    with pytest.raises(UpstreamProtocolError):
        await _collect(provider, _request())


async def test_a_dropped_connection_is_a_connection_error(fake: FakeUpstream, provider: HttpProvider) -> None:
    fake.script(Fault("drop_mid_stream", after_chunks=5, reply=Reply(text="abcdefgh", chunk_size=2)))
    with pytest.raises(UpstreamConnectionError):
        await _collect(provider, _request())


async def test_a_failed_status_in_a_200_body(fake: FakeUpstream, provider: HttpProvider) -> None:
    body = orjson.dumps({"id": "r", "status": "failed", "error": {"code": "server_error", "message": "boom"}})
    fake.script(Fault("status", status=200, body=body))
    with pytest.raises(UpstreamStatusError, match="boom"):
        await provider.complete(_request(), "gpt-5-codex")
