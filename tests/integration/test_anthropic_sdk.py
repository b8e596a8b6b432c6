"""The official anthropic SDK through the gateway to each upstream wire format."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import anthropic
import orjson
import pytest
from gateway_support import WIRES, GatewayFactory, settings_for

from ccrouter.testing import FakeUpstream, Reply, ToolCall

BASH_TOOL = {
    "name": "Bash",
    "description": "Run a shell command",
    "input_schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"command": {"type": "string"}, "description": {"type": "string"}},
        "required": ["command"],
        "additionalProperties": False,
    },
}

pytestmark = pytest.mark.parametrize("wire", list(WIRES))


AnthropicAt = Callable[[str], anthropic.AsyncAnthropic]


async def test_text_not_streamed(
    fake: FakeUpstream, gateway: GatewayFactory, anthropic_at: AnthropicAt, wire: str
) -> None:
    fake.script(Reply(text="Hello from upstream", input_tokens=11, output_tokens=4))
    client = anthropic_at(await gateway(settings_for(fake.url, wire)))
    message = await client.messages.create(
        model="claude-sonnet-4-6", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from upstream"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 11
    assert message.usage.output_tokens == 4
    assert fake.requests[-1].wire == WIRES[wire]["type"]


async def test_text_streamed(
    fake: FakeUpstream, gateway: GatewayFactory, anthropic_at: AnthropicAt, wire: str
) -> None:
    fake.script(Reply(text="Streaming works fine, élan ✓", input_tokens=7, output_tokens=9, chunk_size=3))
    client = anthropic_at(await gateway(settings_for(fake.url, wire)))
    events = []
    async with client.messages.stream(
        model="claude-sonnet-4-6", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        async for event in stream:
            events.append(event.type)
        message = await stream.get_final_message()
    assert message.content[0].type == "text"
    assert message.content[0].text == "Streaming works fine, élan ✓"
    assert message.usage.output_tokens == 9
    assert events[0] == "message_start"
    assert events[-1] == "message_stop"


async def test_streamed_tool_call_then_result(
    fake: FakeUpstream, gateway: GatewayFactory, anthropic_at: AnthropicAt, wire: str
) -> None:
    arguments = {"command": "ls -la /tmp", "description": "List the temporary directory"}
    fake.script(
        Reply(text="Let me look.", tool_calls=[ToolCall("Bash", arguments, id="call_1")], chunk_size=5),
        Reply(text="There are 3 files."),
    )
    client = anthropic_at(await gateway(settings_for(fake.url, wire)))
    deltas = 0
    async with client.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=200,
        tools=[BASH_TOOL],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "What is in /tmp?"}],
    ) as stream:
        async for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                deltas += 1
        message = await stream.get_final_message()
    tool_uses = [block for block in message.content if block.type == "tool_use"]
    assert message.stop_reason == "tool_use"
    assert len(tool_uses) == 1
    assert tool_uses[0].name == "Bash"
    assert tool_uses[0].input == arguments
    if wire != "gemini":  # Gemini sends function-call arguments whole, never in fragments
        assert deltas > 1

    follow_up = await client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=200,
        tools=[BASH_TOOL],  # type: ignore[list-item]
        messages=[
            {"role": "user", "content": "What is in /tmp?"},
            {"role": "assistant", "content": [block.model_dump() for block in message.content]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": tool_uses[0].id, "content": "a\nb\nc"}],
            },
        ],
    )
    assert follow_up.content[0].text == "There are 3 files."  # type: ignore[union-attr]
    sent = fake.requests[-1].body
    assert "a\\nb\\nc" in orjson.dumps(sent).decode()
    if wire == "openai":
        roles = [m["role"] for m in sent["messages"]]
        assert roles[-2:] == ["assistant", "tool"]
        assert sent["messages"][-1]["tool_call_id"] == sent["messages"][-2]["tool_calls"][0]["id"]
    elif wire == "gemini":
        last = sent["contents"][-1]["parts"][0]
        assert last["functionResponse"]["name"] == "Bash"
    elif wire == "openai_responses":
        kinds = [item["type"] for item in sent["input"]]
        assert kinds[-2:] == ["function_call", "function_call_output"]
        assert sent["input"][-1]["call_id"] == sent["input"][-2]["call_id"] == tool_uses[0].id
    else:
        assert sent["messages"][-1]["content"][0]["tool_use_id"] == tool_uses[0].id


async def test_streamed_events_are_not_held_back(
    fake: FakeUpstream, gateway: GatewayFactory, anthropic_at: AnthropicAt, wire: str
) -> None:
    # The upstream paces its frames 50 ms apart; the gateway writes each upstream read's events at
    # once, so every text delta reaches the client about when the upstream sent it.
    fake.script(Reply(text="abcdefgh" * 4, chunk_size=8, chunk_delay=0.05))
    client = anthropic_at(await gateway(settings_for(fake.url, wire)))
    arrivals: list[float] = []
    loop = asyncio.get_running_loop()
    async with client.messages.stream(
        model="claude-sonnet-4-6", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        async for event in stream:
            if event.type == "content_block_delta":
                arrivals.append(loop.time())
    assert len(arrivals) == 4
    gaps = sorted(later - earlier for earlier, later in itertools.pairwise(arrivals))
    # Held-back deltas would arrive together (gaps near 0). The median gap, not the smallest, so one
    # late frame on a busy machine (which shortens the gap after it) cannot fail the test.
    assert gaps[len(gaps) // 2] > 0.025, gaps
