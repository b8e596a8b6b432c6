"""What routing and the provider's rules change in a request reaches the upstream body, for every
client wire and every upstream wire, the passthroughs (Anthropic to Anthropic, OpenAI to OpenAI)
included: routing edits only the canonical request, and each encoder derives what changed.

The request carries Claude Code's billing line (removed: the fake is not Anthropic's API), a
claude-code-router subagent tag (removed, and followed: the route is ``up,sub``), a ``max_tokens``
over the model's limit (clamped), and thinking and effort the model cannot take as asked (fitted)."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest
from gateway_support import WIRES, GatewayFactory

from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream

BILLING = "x-anthropic-billing-header: cc_version=2.1.197.f3a; cc_entrypoint=sdk-cli; cch=00000;"
TAG = "<CCR-SUBAGENT-MODEL>up,sub</CCR-SUBAGENT-MODEL>"
LIMIT = 4000


def _settings(fake_url: str, wire: str, *, thinking: bool) -> Settings:
    spec = WIRES[wire]
    sub = {"name": "sub", "max_output_tokens": LIMIT, "context_window": 200_000, "thinking": thinking}
    return Settings.model_validate(
        {
            "providers": [
                {
                    "name": "up",
                    "type": spec["type"],
                    "base_url": fake_url + spec["suffix"],
                    "api_key": "sk-test-secret-key",
                    "models": ["main", sub],
                }
            ],
            "router": {"default": "up,main"},
        }
    )


ANTHROPIC_BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 50_000,
    "thinking": {"type": "enabled", "budget_tokens": 30_000},
    "system": [
        {"type": "text", "text": BILLING},
        {"type": "text", "text": f"You are helpful.\n{TAG}", "cache_control": {"type": "ephemeral"}},
    ],
    "messages": [{"role": "user", "content": "hi"}],
    "metadata": {"user_id": "u"},
    "output_config": {"effort": "high"},
}
OPENAI_BODY: dict[str, Any] = {
    "model": "gpt-4o",
    "max_tokens": 50_000,
    "reasoning_effort": "high",
    "messages": [
        {"role": "system", "content": f"{BILLING}\nYou are helpful.\n{TAG}"},
        {"role": "user", "content": "hi"},
    ],
    "user": "u",
}


async def _call(url: str, client: str) -> None:
    path, body = (
        ("/v1/messages", ANTHROPIC_BODY) if client == "anthropic" else ("/v1/chat/completions", OPENAI_BODY)
    )
    headers = {"anthropic-version": "2023-06-01", "content-type": "application/json"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + path, data=orjson.dumps(body), headers=headers) as response,
    ):
        assert response.status == 200, await response.text()


def _check_anthropic(sent: dict[str, Any], client: str, thinking: bool) -> None:
    assert sent["model"] == "sub"
    assert sent["max_tokens"] == LIMIT
    if client == "anthropic":
        # The passthrough: the client's system block, its cache_control kept, without the tag.
        assert sent["system"] == [
            {"type": "text", "text": "You are helpful.\n", "cache_control": {"type": "ephemeral"}}
        ]
        assert sent["messages"] == ANTHROPIC_BODY["messages"]
        assert sent["metadata"] == ANTHROPIC_BODY["metadata"]
        if thinking:
            assert sent["thinking"] == {"type": "enabled", "budget_tokens": LIMIT // 2}
            assert sent["output_config"] == {"effort": "high"}
        else:
            # Routing dropped the effort for a model without reasoning: the passthrough follows.
            assert sent["thinking"] == {"type": "disabled"}
            assert "output_config" not in sent
    else:
        assert sent["system"] == [{"type": "text", "text": "You are helpful.\n"}]
        if thinking:
            assert sent["thinking"] == {"type": "enabled", "budget_tokens": LIMIT // 2}
            assert sent["output_config"] == {"effort": "high"}
        else:
            assert "thinking" not in sent
            assert "output_config" not in sent


def _check_openai(sent: dict[str, Any], thinking: bool) -> None:
    assert sent["model"] == "sub"
    assert sent["max_tokens"] == LIMIT
    assert sent["messages"][0] == {"role": "system", "content": "You are helpful.\n"}
    assert sent["messages"][1] == {"role": "user", "content": "hi"}
    if not thinking:
        assert "reasoning_effort" not in sent
    else:
        assert sent["reasoning_effort"] == "high"  # the client's effort, kept for a reasoning model


def _check_gemini(sent: dict[str, Any], path: str, thinking: bool) -> None:
    assert "/models/sub:" in path
    assert sent["systemInstruction"] == {"parts": [{"text": "You are helpful.\n"}]}
    config = sent["generationConfig"]
    assert config["maxOutputTokens"] == LIMIT
    if thinking:
        assert config["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": LIMIT // 2}
    else:
        assert "thinkingConfig" not in config


@pytest.mark.parametrize("thinking", [True, False], ids=["thinking-model", "no-thinking-model"])
@pytest.mark.parametrize("upstream", ["anthropic", "openai", "gemini"])
@pytest.mark.parametrize("client", ["anthropic", "openai"])
async def test_routing_edits_reach_the_upstream_body(
    fake: FakeUpstream, gateway: GatewayFactory, client: str, upstream: str, thinking: bool
) -> None:
    url = await gateway(_settings(fake.url, upstream, thinking=thinking))
    await _call(url, client)
    recorded = fake.requests[-1]
    sent = recorded.body
    assert isinstance(sent, dict)
    text = orjson.dumps(sent)
    assert b"x-anthropic-billing-header" not in text
    assert b"CCR-SUBAGENT-MODEL" not in text
    if upstream == "anthropic":
        _check_anthropic(sent, client, thinking)
    elif upstream == "openai":
        _check_openai(sent, thinking)
    else:
        _check_gemini(sent, recorded.path, thinking)
