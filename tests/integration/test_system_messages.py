"""Claude Code 2.1.332's in-conversation system messages, through the gateway to every wire.

Claude Code sends a ``role: system`` message right after the first user turn (``# Environment``) and
after each tool result (``<total_tokens>N tokens left</total_tokens>``), so a tool turn ends with a
system message. Driven like Claude Code's agent loop (call the tool, send its result back, until the
answer is not a tool call) against the shipped fake's default behaviour, the simulated model, the
round must take two requests on every wire; 935 requests in 90 s was the loop this guards against.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from gateway_support import GatewayFactory, settings_for

from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream

# The exact shapes (from the golden fixtures, one source for the codec and gateway tests).
_FIXTURES = Path(__file__).resolve().parent.parent / "golden" / "openai" / "requests"
FIRST_TURN: dict[str, Any] = orjson.loads((_FIXTURES / "claude_code_2_1_332_first_turn.json").read_bytes())[
    "anthropic"
]
HEADERS = {
    "anthropic-version": "2023-06-01",
    "x-app": "cli",
    "user-agent": "claude-cli/2.1.332 (external, sdk-cli)",
}
TOKENS_NOTE = "<total_tokens>127412 tokens left</total_tokens>"
MAX_ROUNDS = 6


def _blocks(sse: str) -> tuple[str, list[dict[str, Any]], str | None]:
    """The message id, the content blocks and the stop reason of an Anthropic SSE stream."""
    message_id, blocks, stop_reason = "", [], None
    partial: dict[int, str] = {}
    for frame in sse.split("\n\n"):
        data = next((line[6:] for line in frame.split("\n") if line.startswith("data: ")), None)
        if data is None:
            continue
        event = orjson.loads(data)
        if event["type"] == "message_start":
            message_id = event["message"]["id"]
        elif event["type"] == "content_block_start":
            blocks.append(dict(event["content_block"]))
        elif event["type"] == "content_block_delta":
            delta = event["delta"]
            if delta["type"] == "text_delta":
                blocks[event["index"]]["text"] += delta["text"]
            elif delta["type"] == "input_json_delta":
                partial[event["index"]] = partial.get(event["index"], "") + delta["partial_json"]
        elif event["type"] == "message_delta":
            stop_reason = event["delta"]["stop_reason"]
    for index, text in partial.items():
        blocks[index]["input"] = orjson.loads(text) if text else {}
    return message_id, blocks, stop_reason


async def _agent_loop(url: str, command_output: str) -> tuple[list[str], list[dict[str, Any]], str]:
    """Claude Code's loop: answer each tool call with ``command_output`` and a token note, until
    the model stops calling tools. Returns the message ids, the final blocks and the stop reason."""
    body = copy.deepcopy(FIRST_TURN)
    ids: list[str] = []
    async with aiohttp.ClientSession() as session:
        for _ in range(MAX_ROUNDS):
            async with session.post(
                url + "/v1/messages?beta=true", data=orjson.dumps(body), headers=HEADERS
            ) as response:
                assert response.status == 200, await response.text()
                message_id, blocks, stop_reason = _blocks(await response.text())
            ids.append(message_id)
            if stop_reason != "tool_use":
                return ids, blocks, str(stop_reason)
            calls = [block for block in blocks if block["type"] == "tool_use"]
            results = [
                {
                    "type": "tool_result",
                    "tool_use_id": call["id"],
                    "content": [{"type": "text", "text": command_output}],
                }
                for call in calls
            ]
            body["messages"] += [
                {"role": "assistant", "content": blocks},
                {"role": "user", "content": results},
                # As Claude Code 2.1.332 sends it: the last message carries the cache breakpoint.
                {
                    "role": "system",
                    "content": [
                        {"type": "text", "text": TOKENS_NOTE, "cache_control": {"type": "ephemeral"}}
                    ],
                },
            ]
    raise AssertionError(f"no answer after {MAX_ROUNDS} requests: the tool result was never answered")


@pytest.mark.parametrize("wire", ["openai", "gemini", "anthropic"])
async def test_a_tool_round_ends_after_two_requests(
    fake: FakeUpstream, gateway: GatewayFactory, wire: str
) -> None:
    url = await gateway(settings_for(fake.url, wire))
    _, blocks, stop_reason = await _agent_loop(url, "hello")
    assert len(fake.requests) == 2
    assert stop_reason == "end_turn"
    assert blocks[-1]["text"] == "The command finished. Output:\nhello"
    sent = fake.requests[-1].body
    if wire == "openai":
        # The tool result, then the notes as user text: no system message after the first.
        roles = [message["role"] for message in sent["messages"]]
        assert roles == ["system", "user", "user", "assistant", "tool", "user"]
        assert sent["messages"][-1]["content"] == f"<system-reminder>\n{TOKENS_NOTE}\n</system-reminder>"
    elif wire == "gemini":
        last = sent["contents"][-1]
        assert last["role"] == "user"
        assert "functionResponse" in last["parts"][0]
        assert last["parts"][1] == {"text": f"<system-reminder>\n{TOKENS_NOTE}\n</system-reminder>"}
        assert sent["contents"][0]["parts"][-1]["text"].startswith("<system-reminder>\n# Environment")
    else:
        # The Anthropic passthrough forwards the system messages untouched.
        assert sent["messages"][-1]["role"] == "system"
        assert sent["messages"][-1]["content"][0]["text"] == TOKENS_NOTE
        assert sent["messages"][1] == FIRST_TURN["messages"][1]


async def test_the_simulated_provider_answers_the_tool_result(gateway: GatewayFactory) -> None:
    settings = Settings.model_validate(
        {
            "providers": [{"name": "simulated", "type": "simulated", "models": ["sim-1"]}],
            "router": {"default": "simulated,sim-1"},
        }
    )
    url = await gateway(settings, simulated=True)
    ids, blocks, stop_reason = await _agent_loop(url, "ccrouter-ok")
    assert len(ids) == 2
    assert stop_reason == "end_turn"
    assert blocks[-1]["text"] == "The command finished. Output:\nccrouter-ok"
