"""A ``type: azure`` provider through the real gateway, the official anthropic and openai SDKs as
clients, the shipped fake Azure OpenAI resource upstream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import anthropic
import openai
import pytest
from gateway_support import GatewayFactory

from ccrouter.config import Settings
from ccrouter.testing import FakeAzureOpenAI, FakeUpstream, Fault, Reply, ToolCall

KEY = "azkey-0123456789abcdef0123456789abcdef"
AnthropicAt = Callable[[str], anthropic.AsyncAnthropic]
OpenAIAt = Callable[[str], openai.AsyncOpenAI]
BASH = {
    "name": "Bash",
    "description": "Run a shell command",
    "input_schema": {
        "type": "object",
        "properties": {"command": {"type": "string"}},
        "required": ["command"],
    },
}


@pytest.fixture
async def azure() -> AsyncIterator[FakeAzureOpenAI]:
    async with FakeAzureOpenAI(api_key=KEY, rate_limit_headers=False) as server:
        yield server


def _azure(url: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": "az",
        "type": "azure",
        "base_url": url,
        "api_key": KEY,
        "models": [{"name": "prod-gpt4o", "base_model": "gpt-4o"}],
        **fields,
    }


def _settings(*providers: dict[str, Any], fallback: list[str] | None = None) -> Settings:
    return Settings.model_validate(
        {
            "providers": list(providers),
            "router": {"default": "az,prod-gpt4o", "fallback": {"default": fallback or []}},
            "routing": {"auto_fallback": "off"},
        }
    )


async def test_a_claude_code_style_tool_round_on_an_azure_deployment(
    azure: FakeAzureOpenAI, gateway: GatewayFactory, anthropic_at: AnthropicAt
) -> None:
    client = anthropic_at(await gateway(_settings(_azure(azure.url))))
    azure.script(Reply(tool_calls=[ToolCall("Bash", {"command": "ls"})]), Reply(text="One file: a.txt"))
    first = await client.messages.create(
        model="claude-sonnet-4-5", max_tokens=200, tools=[BASH], messages=[{"role": "user", "content": "ls"}]
    )
    assert first.stop_reason == "tool_use"
    call = first.content[-1]
    assert call.type == "tool_use"
    assert call.input == {"command": "ls"}
    turn: list[Any] = [
        {"role": "user", "content": "ls"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": call.id, "name": "Bash", "input": {"command": "ls"}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "a.txt"}]},
    ]
    async with client.messages.stream(
        model="claude-sonnet-4-5", max_tokens=200, tools=[BASH], messages=turn
    ) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "One file: a.txt"
    assert final.stop_reason == "end_turn"
    paths = {(r.path, r.query.get("api-version")) for r in azure.requests}
    assert paths == {("/openai/deployments/prod-gpt4o/chat/completions", "2024-10-21")}
    assert all(r.headers["api-key"] == KEY for r in azure.requests)
    tool_message = azure.requests[1].body["messages"][-1]  # type: ignore[index]
    assert tool_message["role"] == "tool"
    assert tool_message["tool_call_id"] == call.id


async def test_the_openai_sdk_on_the_v1_api_streamed_and_not(
    azure: FakeAzureOpenAI, gateway: GatewayFactory, openai_at: OpenAIAt
) -> None:
    client = openai_at(await gateway(_settings(_azure(azure.url + "/openai/v1", api_version="v1"))))
    azure.script(Reply(text="plain"), Reply(text="streamed"))
    completion = await client.chat.completions.create(
        model="az,prod-gpt4o", messages=[{"role": "user", "content": "hi"}], max_tokens=20
    )
    assert completion.choices[0].message.content == "plain"
    stream = await client.chat.completions.create(
        model="az,prod-gpt4o", messages=[{"role": "user", "content": "hi"}], max_tokens=20, stream=True
    )
    pieces = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
    assert "".join(pieces) == "streamed"
    assert [r.path for r in azure.requests] == ["/openai/v1/chat/completions"] * 2
    assert all(isinstance(r.body, dict) and r.body["model"] == "prod-gpt4o" for r in azure.requests)
    assert all("api-version" not in r.query for r in azure.requests)


async def test_a_429_fails_over_and_a_bad_key_never_leaks(
    azure: FakeAzureOpenAI, fake: FakeUpstream, gateway: GatewayFactory, anthropic_at: AnthropicAt
) -> None:
    backup = {
        "name": "backup",
        "type": "openai",
        "vendor": "generic",
        "base_url": fake.url + "/v1",
        "api_key": "k",
        "models": ["gpt-test"],
    }
    client = anthropic_at(await gateway(_settings(_azure(azure.url), backup, fallback=["backup,gpt-test"])))
    azure.script(Fault("status", status=429, retry_after=30))
    fake.script(Reply(text="from the backup"))
    message = await client.messages.create(
        model="m", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "from the backup"
    assert len(azure.requests) == 1

    wrong = _azure(azure.url, api_key="azkey-wrong-0000000000000000000000000000")
    azure.resource_key = "another-key-entirely"
    client = anthropic_at(await gateway(_settings(wrong)))
    with pytest.raises(anthropic.APIStatusError) as caught:
        await client.messages.create(model="m", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code in (401, 502)
    text = json.dumps(caught.value.body) + caught.value.response.text
    assert "Access denied" in text
    assert "azkey-wrong" not in text
