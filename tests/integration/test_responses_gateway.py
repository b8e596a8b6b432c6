"""An ``openai_responses`` provider through the real gateway: the anthropic SDK on /v1/messages and the
openai SDK on /v1/chat/completions, to the fake's Responses wire, streamed and not, with a tool round;
upstream faults end in clean client errors, and a failure before any content fails over."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import anthropic
import openai
import orjson
import pytest
from gateway_support import GatewayFactory

from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream, Fault, Reply, ToolCall

MODEL = "gpt-5-codex"
KEY = "sk-proj-upstream-secret-0123456789"
BASH = {
    "name": "Bash",
    "description": "Run a shell command",
    "input_schema": {
        "type": "object",
        "properties": {"command": {"type": "string"}},
        "required": ["command"],
    },
}
BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "hi"}],
}

# A stream that ends cleanly before response.completed.
CUT = (
    b'event: response.created\ndata: {"type":"response.created",'
    b'"response":{"id":"r","status":"in_progress"}}\n\n'
    b'event: response.output_item.added\ndata: {"type":"response.output_item.added","output_index":0,'
    b'"item":{"type":"message","id":"m","role":"assistant","content":[]}}\n\n'
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","output_index":0,'
    b'"item_id":"m","content_index":0,"delta":"half an ans"}\n\n'
)

AnthropicAt = Callable[[str], anthropic.AsyncAnthropic]
OpenAIAt = Callable[[str], openai.AsyncOpenAI]


@pytest.fixture
async def backup() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as upstream:
        yield upstream


def _settings(fake: FakeUpstream, backup: FakeUpstream | None = None) -> Settings:
    providers: list[dict[str, Any]] = [
        {
            "name": "resp",
            "type": "openai_responses",
            "base_url": fake.url + "/v1",
            "api_key": KEY,
            "models": [MODEL],
            "timeouts": {"connect": 2, "first_byte": 5, "idle": 5, "total": 20},
        }
    ]
    router: dict[str, Any] = {"default": f"resp,{MODEL}"}
    if backup is not None:
        providers.append(
            {
                "name": "backup",
                "type": "openai_responses",
                "base_url": backup.url + "/v1",
                "models": ["o3-pro"],
            }
        )
        router["fallback"] = {"default": ["backup,o3-pro"]}
    return Settings.model_validate(
        {
            "providers": providers,
            "router": router,
            "routing": {"strategy": "priority", "auto_fallback": "off"},
        }
    )


async def _post(url: str, body: dict[str, Any]) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/v1/messages", data=orjson.dumps(body)) as response,
    ):
        return response.status, await response.read()


def _sse(raw: bytes) -> list[tuple[str, Any]]:
    events = []
    for block in raw.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            events.append((lines["event"], orjson.loads(lines["data"])))
    return events


def _text(raw: bytes, *, stream: bool) -> str:
    if not stream:
        return "".join(block.get("text", "") for block in orjson.loads(raw)["content"])
    return "".join(data["delta"].get("text", "") for kind, data in _sse(raw) if kind == "content_block_delta")


# =========================================================================== the two client wires


async def test_anthropic_sdk_not_streamed_with_reasoning(
    fake: FakeUpstream, gateway: GatewayFactory, anthropic_at: AnthropicAt
) -> None:
    fake.script(
        Reply(
            text="Paris.",
            thinking="Capital of France.",
            input_tokens=20,
            output_tokens=9,
            cache_read_tokens=8,
        )
    )
    client = anthropic_at(await gateway(_settings(fake)))
    message = await client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=2000,
        system="Be brief.",
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Capital of France?"}],
    )
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "Capital of France."  # type: ignore[union-attr]
    assert message.content[1].text == "Paris."  # type: ignore[union-attr]
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (20, 8)
    sent = fake.requests[-1]
    assert (sent.wire, sent.path) == ("openai_responses", "/v1/responses")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body["store"] is False
    assert "previous_response_id" not in sent.body
    assert sent.body["instructions"] == "Be brief."
    assert sent.body["reasoning"] == {"effort": "low", "summary": "auto"}


async def test_anthropic_sdk_streamed_tool_round_sends_the_whole_history(
    fake: FakeUpstream, gateway: GatewayFactory, anthropic_at: AnthropicAt
) -> None:
    fake.script(
        Reply(text="Looking.", tool_calls=[ToolCall("Bash", {"command": "ls"}, id="call_ls")], chunk_size=3),
        Reply(text="Two files.", chunk_size=3),
    )
    client = anthropic_at(await gateway(_settings(fake)))
    history: list[Any] = [{"role": "user", "content": "What is here?"}]
    async with client.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=300,
        tools=[BASH],
        messages=history,  # type: ignore[list-item]
    ) as stream:
        first = await stream.get_final_message()
    assert first.stop_reason == "tool_use"
    call = first.content[-1]
    assert call.type == "tool_use"
    assert (call.id, call.name, call.input) == ("call_ls", "Bash", {"command": "ls"})
    history += [
        {"role": "assistant", "content": [block.model_dump() for block in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "a\nb"}]},
    ]
    async with client.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=300,
        tools=[BASH],
        messages=history,  # type: ignore[list-item]
    ) as stream:
        second = await stream.get_final_message()
    assert second.content[0].text == "Two files."  # type: ignore[union-attr]
    sent = fake.requests[-1].body
    assert sent["stream"] is True
    assert "previous_response_id" not in sent
    assert [item["type"] for item in sent["input"]] == [
        "message",
        "message",
        "function_call",
        "function_call_output",
    ]
    assert sent["input"][2] == {
        "type": "function_call",
        "call_id": "call_ls",
        "name": "Bash",
        "arguments": '{"command":"ls"}',
    }
    assert sent["input"][3] == {"type": "function_call_output", "call_id": "call_ls", "output": "a\nb"}


async def test_openai_sdk_tool_round_not_streamed(
    fake: FakeUpstream, gateway: GatewayFactory, openai_at: OpenAIAt
) -> None:
    fake.script(
        Reply(
            tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_w")],
            input_tokens=5,
            output_tokens=3,
        ),
        Reply(text="Sunny.", input_tokens=9, output_tokens=2),
    )
    client = openai_at(await gateway(_settings(fake)))
    tools: Any = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = await client.chat.completions.create(model="whatever", messages=messages, tools=tools)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert (call.id, call.function.name, orjson.loads(call.function.arguments)) == (  # type: ignore[union-attr]
        "call_w",
        "get_weather",
        {"city": "Paris"},
    )
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sun"},
    ]
    second = await client.chat.completions.create(model="whatever", messages=messages, tools=tools)
    assert second.choices[0].message.content == "Sunny."
    assert second.usage is not None
    assert (second.usage.prompt_tokens, second.usage.completion_tokens) == (9, 2)
    sent = fake.requests[-1].body
    assert sent["input"][-1] == {"type": "function_call_output", "call_id": "call_w", "output": "sun"}


async def test_openai_sdk_streamed(fake: FakeUpstream, gateway: GatewayFactory, openai_at: OpenAIAt) -> None:
    fake.script(
        Reply(text="Bonjour tout le monde", thinking="French.", chunk_size=4, input_tokens=6, output_tokens=5)
    )
    client = openai_at(await gateway(_settings(fake)))
    stream = await client.chat.completions.create(
        model="whatever",
        messages=[{"role": "user", "content": "Say hello in French"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text = ""
    finish = None
    usage = None
    async for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert text == "Bonjour tout le monde"
    assert finish == "stop"
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (6, 5)


# =========================================================================== faults


@pytest.mark.parametrize("stream", [False, True])
async def test_a_500_is_a_clean_error_without_the_key(
    fake: FakeUpstream, gateway: GatewayFactory, stream: bool
) -> None:
    fake.script(Fault("status", status=500))
    status, raw = await _post(await gateway(_settings(fake)), {**BODY, "stream": stream})
    assert status >= 500
    error = orjson.loads(raw)
    assert error["type"] == "error"
    assert "server had an error" in error["error"]["message"]
    assert KEY.encode() not in raw


async def test_a_500_on_the_openai_route_is_openais_envelope(
    fake: FakeUpstream, gateway: GatewayFactory, openai_at: OpenAIAt
) -> None:
    fake.script(Fault("status", status=500))
    client = openai_at(await gateway(_settings(fake)))
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(model="whatever", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code >= 500
    assert "server had an error" in caught.value.message


@pytest.mark.parametrize("stream", [False, True])
async def test_a_429_with_retry_after_fails_over(
    fake: FakeUpstream, backup: FakeUpstream, gateway: GatewayFactory, stream: bool
) -> None:
    fake.script(Fault("status", status=429, retry_after=30))
    backup.script(Reply(text="from the backup"))
    status, raw = await _post(await gateway(_settings(fake, backup)), {**BODY, "stream": stream})
    assert status == 200
    assert _text(raw, stream=stream) == "from the backup"
    assert len(fake.requests) == 1
    assert backup.requests[-1].wire == "openai_responses"


async def test_an_error_event_before_any_content_fails_over(
    fake: FakeUpstream, backup: FakeUpstream, gateway: GatewayFactory
) -> None:
    # response.created and response.in_progress, then an error event: nothing reached the client yet.
    fake.script(Fault("stream_error", status=429, after_chunks=2, reply=Reply(text="never sent")))
    backup.script(Reply(text="from the backup"))
    status, raw = await _post(await gateway(_settings(fake, backup)), {**BODY, "stream": True})
    assert status == 200
    events = _sse(raw)
    assert events[-1][0] == "message_stop"
    assert "".join(
        data["delta"].get("text", "") for kind, data in events if kind == "content_block_delta"
    ) == ("from the backup")


@pytest.mark.parametrize(
    "fault",
    [
        Fault(
            "stream_error", status=500, after_chunks=6, reply=Reply(text="partial answer here", chunk_size=3)
        ),
        Fault("bad_frame", after_chunks=6, reply=Reply(text="partial answer here", chunk_size=3)),
        Fault("drop_mid_stream", after_chunks=6, reply=Reply(text="partial answer here", chunk_size=3)),
    ],
    ids=["error-event", "malformed-event", "dropped"],
)
async def test_a_stream_broken_after_content_ends_with_an_error_event(
    fake: FakeUpstream, gateway: GatewayFactory, fault: Fault
) -> None:
    fake.script(fault)
    status, raw = await _post(await gateway(_settings(fake)), {**BODY, "stream": True})
    assert status == 200
    events = _sse(raw)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "message_start"
    assert "content_block_delta" in kinds
    assert kinds[-1] == "error"
    assert "message_stop" not in kinds
    assert events[-1][1]["error"]["message"].startswith("resp: ")


async def test_a_stream_that_ends_without_completion_is_an_error_for_the_sdk(
    fake: FakeUpstream, gateway: GatewayFactory, anthropic_at: AnthropicAt
) -> None:
    fake.script(Fault("status", status=200, body=CUT, headers={"Content-Type": "text/event-stream"}))
    client = anthropic_at(await gateway(_settings(fake)))
    with pytest.raises(anthropic.APIStatusError, match="truncated"):
        await _drain(client)


async def _drain(client: anthropic.AsyncAnthropic) -> None:
    async with client.messages.stream(**BODY) as stream:
        async for _ in stream:
            pass
