"""What real Claude Code depends on, checked with a realistic ~100 KB self-written request."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
from gateway_support import GatewayFactory, settings_for

from ccrouter.testing import FakeUpstream, Reply, ToolCall
from ccrouter.testing.claude_code import TOOL_NAMES, claude_code_request

HEADERS = {
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27",
    "x-app": "cli",
    "user-agent": "claude-cli/2.1.197 (external, sdk-cli)",
    "x-claude-code-session-id": "0b7e6a52-3c1d-4c8e-9a55-7d1f2e3a4b5c",
}


def _sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    """Parse SSE strictly: every frame must have an event line and a JSON data line."""
    frames = []
    for raw in text.split("\n\n"):
        if not raw.strip():
            continue
        lines = raw.split("\n")
        assert lines[0].startswith("event: "), raw
        assert lines[1].startswith("data: "), raw
        frames.append((lines[0][7:], orjson.loads(lines[1][6:])))
    return frames


async def _send(url: str, body: dict[str, Any]) -> tuple[int, dict[str, str], str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/v1/messages?beta=true", data=orjson.dumps(body), headers=HEADERS) as response,
    ):
        headers = {key.lower(): value for key, value in response.headers.items()}
        return response.status, headers, (await response.read()).decode()


def _check_grammar(frames: list[tuple[str, dict[str, Any]]]) -> None:
    names = [name for name, _ in frames]
    assert names[0] == "message_start"
    assert names[-1] == "message_stop"
    assert names[-2] == "message_delta"
    open_index = None
    for name, data in frames:
        if name == "content_block_start":
            assert open_index is None, "blocks must be strictly sequential"
            open_index = data["index"]
        elif name == "content_block_delta":
            assert data["index"] == open_index
        elif name == "content_block_stop":
            assert data["index"] == open_index
            open_index = None
    assert open_index is None


async def test_claude_code_request_to_openai_upstream(fake: FakeUpstream, gateway: GatewayFactory) -> None:
    fake.script(Reply(text="I'll run the test.", tool_calls=[ToolCall("Bash", {"command": "pytest -x"})]))
    url = await gateway(settings_for(fake.url, "openai"))
    body = claude_code_request()
    assert len(orjson.dumps(body)) > 90_000
    status, headers, text = await _send(url, body)
    assert status == 200, text
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["x-ccrouter-provider"] == "up"
    frames = _sse(text)
    _check_grammar(frames)
    assert "[DONE]" not in text
    assert any(name == "ping" for name, _ in frames)
    delta = next(data for name, data in frames if name == "message_delta")
    assert delta["delta"]["stop_reason"] == "tool_use"

    sent = fake.requests[-1].body
    messages = sent["messages"]
    assert messages[0]["role"] == "system"
    assert "x-anthropic-billing-header" not in orjson.dumps(sent).decode()
    assert "You are Claude Code" in messages[0]["content"]
    assert [tool["function"]["name"] for tool in sent["tools"]] == TOOL_NAMES
    # The system message inside the conversation reaches OpenAI as a user note in its place.
    assert all(m["role"] != "system" for m in messages[1:])
    assert any(
        m["role"] == "user" and m["content"].startswith("<system-reminder>\nThe user's working directory")
        for m in messages[1:]
    )
    for i, message in enumerate(messages):
        if message.get("tool_calls"):
            ids = [call["id"] for call in message["tool_calls"]]
            following = messages[i + 1 : i + 1 + len(ids)]
            assert [m["role"] for m in following] == ["tool"] * len(ids)
            assert [m["tool_call_id"] for m in following] == ids


async def test_claude_code_request_to_anthropic_upstream_keeps_cache_and_signatures(
    fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    fake.script(Reply(text="Done.", thinking="Considering the failing test."))
    url = await gateway(settings_for(fake.url, "anthropic"))
    body = claude_code_request(model="claude-sonnet-4-6")
    status, _, text = await _send(url, body)
    assert status == 200, text
    _check_grammar(_sse(text))
    sent = fake.requests[-1].body
    assert sent["model"] == "claude-sonnet-4-6"
    assert sent["context_management"] == body["context_management"]
    assert sent["system"][-2:] == body["system"][-2:]  # cache_control kept on both cached blocks
    assert sent["messages"] == body["messages"]  # history, signatures and cache_control untouched
    assert sent["tools"] == body["tools"]
    assert fake.requests[-1].headers["anthropic-beta"] == HEADERS["anthropic-beta"]
