"""A ``type: bedrock`` provider through the real gateway, the official anthropic SDK as the client, to
the shipped fake Bedrock (SigV4 signatures verified): Claude through InvokeModel with a tool round,
streamed and not, a Converse model, a ThrottlingException failing over and cooling Bedrock down, and
broken event streams ending in clean errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import anthropic
import orjson
import pytest
from gateway_support import GatewayFactory

from ccrouter.config import Settings
from ccrouter.testing import FakeBedrock, FakeUpstream, Fault, Reply, StreamFault, ToolCall

CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "amazon.nova-pro-v1:0"
KEY, SECRET = "AKIDGATEWAYTEST00001", "gateway-secret-key-for-tests-0123456789"
TOKEN = "gateway-session-token-0123456789abcdef"
BASH_TOOL = {
    "name": "Bash",
    "description": "Run a shell command",
    "input_schema": {
        "type": "object",
        "properties": {"command": {"type": "string"}},
        "required": ["command"],
    },
}
AnthropicAt = Callable[[str], anthropic.AsyncAnthropic]


@pytest.fixture
async def bedrock() -> AsyncIterator[FakeBedrock]:
    async with FakeBedrock(region="us-east-1", keys={KEY: SECRET}, rate_limit_headers=False) as server:
        yield server


def _bedrock_provider(bedrock: FakeBedrock) -> dict[str, Any]:
    return {
        "name": "br",
        "type": "bedrock",
        "region": "us-east-1",
        "base_url": bedrock.url,
        "models": [CLAUDE, NOVA],
        "aws_access_key_id": KEY,
        "aws_secret_access_key": SECRET,
        "aws_session_token": TOKEN,
        "timeouts": {"connect": 2, "first_byte": 5, "idle": 5, "total": 10},
    }


def _settings(bedrock: FakeBedrock, default: str = CLAUDE, **extra: Any) -> Settings:
    return Settings.model_validate(
        {"providers": [_bedrock_provider(bedrock)], "router": {"default": f"br,{default}"}, **extra}
    )


async def test_claude_on_bedrock_with_a_tool_round(
    bedrock: FakeBedrock, gateway: GatewayFactory, anthropic_at: AnthropicAt
) -> None:
    client = anthropic_at(await gateway(_settings(bedrock)))
    bedrock.script(
        Reply(tool_calls=[ToolCall("Bash", {"command": "ls"}, id="toolu_bdrk_1")]),
        Reply(text="One file: a.txt", chunk_size=4),
    )
    first = await client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=200,
        tools=[BASH_TOOL],
        messages=[{"role": "user", "content": "list the files"}],
    )
    assert first.stop_reason == "tool_use"
    call = first.content[-1]
    assert call.type == "tool_use"
    assert (call.name, call.input) == ("Bash", {"command": "ls"})

    turn = [
        {"role": "user", "content": "list the files"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": call.id, "name": "Bash", "input": {"command": "ls"}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "a.txt"}]},
    ]
    texts = []
    async with client.messages.stream(
        model="claude-sonnet-4-5", max_tokens=200, tools=[BASH_TOOL], messages=turn
    ) as stream:
        async for text in stream.text_stream:
            texts.append(text)
        final = await stream.get_final_message()
    assert "".join(texts) == "One file: a.txt"
    assert final.stop_reason == "end_turn"

    unary, streamed = bedrock.requests
    assert unary.path == f"/model/{CLAUDE}/invoke"
    assert streamed.path == f"/model/{CLAUDE}/invoke-with-response-stream"
    assert isinstance(streamed.body, dict)
    assert streamed.body["messages"][-1]["content"][0]["tool_use_id"] == call.id
    assert streamed.headers["x-amz-security-token"] == TOKEN
    assert bedrock.access_keys() == [KEY]


async def test_a_converse_model_through_the_gateway(
    bedrock: FakeBedrock, gateway: GatewayFactory, anthropic_at: AnthropicAt
) -> None:
    client = anthropic_at(await gateway(_settings(bedrock, default=NOVA)))
    bedrock.script(
        Reply(tool_calls=[ToolCall("Bash", {"command": "pwd"}, id="tooluse_1")]),
        Reply(text="You are in /tmp", chunk_size=3),
    )
    first = await client.messages.create(
        model="m", max_tokens=100, tools=[BASH_TOOL], messages=[{"role": "user", "content": "where?"}]
    )
    assert first.stop_reason == "tool_use"
    call = first.content[-1]
    assert call.type == "tool_use"
    turn = [
        {"role": "user", "content": "where?"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": call.id, "name": "Bash", "input": call.input}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "/tmp"}]},
    ]
    async with client.messages.stream(model="m", max_tokens=100, tools=[BASH_TOOL], messages=turn) as stream:
        final = await stream.get_final_message()
    assert final.content[0].type == "text"
    assert final.content[0].text == "You are in /tmp"
    body = bedrock.requests[1].body
    assert isinstance(body, dict)
    assert body["messages"][1]["content"][0]["toolUse"]["toolUseId"] == call.id
    assert body["messages"][2]["content"][0]["toolResult"] == {
        "toolUseId": call.id,
        "content": [{"text": "/tmp"}],
    }
    assert body["toolConfig"]["tools"][0]["toolSpec"]["name"] == "Bash"


async def test_a_throttled_bedrock_fails_over_and_cools_down(
    bedrock: FakeBedrock, gateway: GatewayFactory
) -> None:
    async with FakeUpstream(rate_limit_headers=False) as other:
        settings = Settings.model_validate(
            {
                "providers": [
                    _bedrock_provider(bedrock),
                    {
                        "name": "b",
                        "type": "anthropic",
                        "base_url": other.url,
                        "api_key": "sk-b",
                        "models": ["claude-sonnet-4-6"],
                    },
                ],
                "router": {"default": f"br,{CLAUDE}", "fallback": {"default": ["b,claude-sonnet-4-6"]}},
                "routing": {"strategy": "priority", "auto_fallback": "off"},
            }
        )
        url = await gateway(settings)
        bedrock.script(Fault("status", status=429, retry_after=30))
        body = {"model": "m", "max_tokens": 20, "messages": [{"role": "user", "content": "hello"}]}
        async with aiohttp.ClientSession() as session:
            served = []
            for _ in range(3):
                async with session.post(url + "/v1/messages", data=orjson.dumps(body)) as response:
                    assert response.status == 200
                    served.append(response.headers["x-ccrouter-provider"])
                    if len(served) == 1:
                        assert response.headers["x-ccrouter-fallbacks"].startswith(
                            f"br,{CLAUDE}=rate_limit_error/429"
                        )
    assert served == ["b", "b", "b"]
    assert len(bedrock.requests) == 1, "cooling down for Retry-After: not asked again"


@pytest.mark.parametrize(
    "kind", ["bad_message_crc", "bad_prelude_crc", "truncated", "unknown_event", "exception"]
)
async def test_a_broken_event_stream_ends_in_an_sse_error(
    bedrock: FakeBedrock, gateway: GatewayFactory, kind: Any
) -> None:
    url = await gateway(_settings(bedrock))
    bedrock.script(Reply(text="a long enough answer to be cut in the middle", chunk_size=3))
    bedrock.stream_faults(StreamFault(kind, after=4))
    body = {"model": "m", "max_tokens": 50, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    timeout = aiohttp.ClientTimeout(total=8)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(url + "/v1/messages", data=orjson.dumps(body)) as response,
    ):
        assert response.status == 200  # the stream had started
        raw = await response.read()
    assert b"event: message_start" in raw
    assert b"event: error" in raw
    assert b"event: message_stop" not in raw
    assert SECRET.encode() not in raw


async def test_a_broken_stream_before_any_event_is_an_anthropic_error(
    bedrock: FakeBedrock, gateway: GatewayFactory, anthropic_at: AnthropicAt
) -> None:
    client = anthropic_at(await gateway(_settings(bedrock)))
    bedrock.stream_faults(StreamFault("bad_message_crc", after=0))
    with pytest.raises(anthropic.APIStatusError) as caught:
        async with client.messages.stream(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            await stream.get_final_message()
    assert caught.value.status_code == 502
    assert "checksum" in str(caught.value)
    bedrock.script(Fault("status", status=400, body=b"messages.0: bad things"))
    with pytest.raises(anthropic.APIStatusError) as refused:
        await client.messages.create(model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert refused.value.status_code == 400
    assert "ValidationException" in str(refused.value)
