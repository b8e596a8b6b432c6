"""Tool search to an Anthropic target: Claude Code's tools and tool results reach it untouched.

Untouched, the client's bytes of ``tools`` and ``messages`` are forwarded as they came; when a
transformer makes the gateway encode them again (``cleancache`` rebuilds every tool and message),
``defer_loading`` and the ``tool_reference`` blocks must still be there, or Anthropic would load
nothing. The request is Claude Code's after a ToolSearch call (``tests/fixtures``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from gateway_support import GatewayFactory

from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream
from ccrouter.testing.script import Reply

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code_tool_search.json"
CAPTURED = FIXTURE.read_bytes()  # read at import: no file I/O while the loop runs


def captured() -> dict[str, Any]:
    request = json.loads(CAPTURED)["requests"][1]
    return {
        "model": "claude-opus-5-5",
        "max_tokens": 128000,
        "messages": request["messages"],
        "tools": request["tools"],
        "stream": False,
    }


def anthropic_settings(fake_url: str, *, transformers: list[str]) -> Settings:
    return Settings.model_validate(
        {
            "providers": [
                {
                    "name": "anth",
                    "type": "anthropic",
                    "base_url": fake_url,
                    "api_key": "sk-test-secret-key",
                    "models": ["claude-opus-5-5"],
                    "transformers": transformers,
                }
            ],
            "router": {"default": "anth,claude-opus-5-5"},
        }
    )


async def send(url: str, raw: bytes) -> int:
    headers = {
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "advanced-tool-use-2025-11-20,mid-conversation-tool-changes-2026-07-01",
        "content-type": "application/json",
        "x-api-key": "client",
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/v1/messages?beta=true", data=raw, headers=headers) as response,
    ):
        await response.read()
        return response.status


async def test_untouched_fields_reach_anthropic_byte_for_byte(
    fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    body = captured()
    fake.script(Reply(text="ok"))
    url = await gateway(anthropic_settings(fake.url, transformers=[]))
    assert await send(url, orjson.dumps(body)) == 200
    sent = fake.requests[-1]
    assert b'"tools":' + orjson.dumps(body["tools"]) in sent.raw
    assert b'"messages":' + orjson.dumps(body["messages"]) in sent.raw
    assert "advanced-tool-use-2025-11-20" in sent.headers["anthropic-beta"]


async def test_encoded_again_they_keep_defer_loading_and_references(
    fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    body = captured()
    for tool in body["tools"]:
        if tool["name"] == "NotebookEdit":
            tool["cache_control"] = {"type": "ephemeral"}
    fake.script(Reply(text="ok"))
    url = await gateway(anthropic_settings(fake.url, transformers=["cleancache"]))
    assert await send(url, orjson.dumps(body)) == 200
    sent = fake.requests[-1].body
    deferred = [tool["name"] for tool in sent["tools"] if tool.get("defer_loading") is True]
    assert deferred == ["NotebookEdit", "DeferredToolPlaceholder"]
    assert all("cache_control" not in tool for tool in sent["tools"])
    result = sent["messages"][-1]["content"][0]
    assert result["content"] == [
        {"type": "tool_reference", "tool_name": "Glob"},
        {"type": "tool_reference", "tool_name": "NotebookEdit"},
    ]
