"""OpenAI SDK clients get the same routing through POST /v1/chat/completions."""

from __future__ import annotations

import json
from collections.abc import Callable

import openai
import pytest
from gateway_support import WIRES, GatewayFactory, settings_for

from ccrouter.testing import FakeUpstream, Reply, ToolCall

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


@pytest.mark.parametrize("wire", list(WIRES))
async def test_chat_completion(
    fake: FakeUpstream, gateway: GatewayFactory, openai_at: Callable[[str], openai.AsyncOpenAI], wire: str
) -> None:
    fake.script(Reply(text="Bonjour", input_tokens=5, output_tokens=2))
    url = await gateway(settings_for(fake.url, wire))
    client = openai_at(url)
    completion = await client.chat.completions.create(
        model="whatever", messages=[{"role": "user", "content": "Say hello in French"}]
    )
    assert completion.choices[0].message.content == "Bonjour"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 5
    assert completion.usage.completion_tokens == 2


@pytest.mark.parametrize("wire", list(WIRES))
async def test_streamed_tool_call(
    fake: FakeUpstream, gateway: GatewayFactory, openai_at: Callable[[str], openai.AsyncOpenAI], wire: str
) -> None:
    fake.script(Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_9")], chunk_size=4))
    url = await gateway(settings_for(fake.url, wire))
    client = openai_at(url)
    stream = await client.chat.completions.create(
        model="whatever",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=TOOLS,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    name = ""
    arguments = ""
    finish = None
    usage_seen = False
    async for chunk in stream:
        if chunk.usage is not None:
            usage_seen = True
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                name += call.function.name or "" if call.function else ""
                arguments += call.function.arguments or "" if call.function else ""
            finish = choice.finish_reason or finish
    assert name == "get_weather"
    assert json.loads(arguments) == {"city": "Paris"}
    assert finish == "tool_calls"
    assert usage_seen
