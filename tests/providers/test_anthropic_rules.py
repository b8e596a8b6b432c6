"""Anthropic's own request rules, applied by the Anthropic adapter (``providers.anthropic``): the
billing line kept only for Anthropic's API, thinking turned off where Anthropic would refuse it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ccrouter.codecs.anthropic.codec import decode_request
from ccrouter.config import ProviderConfig
from ccrouter.providers.anthropic import AnthropicAdapter, fit_for_anthropic, is_anthropic_api

BILLING = "x-anthropic-billing-header: cc_version=2.1.197.f3a; cc_entrypoint=sdk-cli; cch=00000;"
OFFICIAL = ProviderConfig(name="an", type="anthropic", api_key="sk-x")
ELSEWHERE = ProviderConfig(
    name="ds", type="anthropic", base_url="https://api.deepseek.com/anthropic", api_key="k"
)


def _sent(config: ProviderConfig, body: dict[str, Any]) -> dict[str, Any]:
    call = AnthropicAdapter(config).build(decode_request(body), "claude-sonnet-4-6", stream=False)
    sent = orjson.loads(call.body)
    assert isinstance(sent, dict)
    return sent


def _tool_turn(first_block: dict[str, object] | None) -> dict[str, Any]:
    assistant: list[dict[str, object]] = [] if first_block is None else [first_block]
    assistant.append({"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}})
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 8000,
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "system": [{"type": "text", "text": BILLING}, {"type": "text", "text": "You are Claude Code."}],
        "messages": [
            {"role": "user", "content": "list files"},
            {"role": "assistant", "content": assistant},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a"}]},
        ],
    }


@pytest.mark.parametrize(
    ("config", "official"),
    [
        (OFFICIAL, True),
        (OFFICIAL.model_copy(update={"base_url": "https://api.anthropic.com/v1"}), True),
        (ELSEWHERE, False),
        (
            ProviderConfig(name="o", type="openai", base_url="https://api.anthropic.com/v1", api_key="k"),
            False,
        ),
    ],
)
def test_is_anthropic_api(config: ProviderConfig, official: bool) -> None:
    assert is_anthropic_api(config) is official


def test_the_billing_line_is_kept_for_anthropics_api_only() -> None:
    body = _tool_turn({"type": "thinking", "thinking": "hmm", "signature": "EqQBsig"})
    assert _sent(OFFICIAL, body)["system"] == body["system"]
    assert _sent(ELSEWHERE, body)["system"] == [body["system"][1]]


def test_thinking_is_kept_after_anthropics_own_signed_thinking() -> None:
    body = _tool_turn({"type": "thinking", "thinking": "hmm", "signature": "EqQBsig"})
    assert _sent(OFFICIAL, body)["thinking"] == body["thinking"]


@pytest.mark.parametrize("first", [{"type": "thinking", "thinking": "hmm", "signature": "ccr:openai"}, None])
def test_thinking_is_turned_off_after_a_foreign_tool_turn(first: dict[str, object] | None) -> None:
    # The turn came from another provider: its thinking (signature ccr:openai) is dropped, and
    # Anthropic would refuse thinking on a tool turn that does not start with a block it signed.
    body = _tool_turn(first)
    sent = _sent(OFFICIAL, body)
    assert sent["thinking"] == {"type": "disabled"}
    assert all(block["type"] != "thinking" for block in sent["messages"][1]["content"])
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2000}  # the client's body untouched


def test_the_rules_change_nothing_when_nothing_applies() -> None:
    request = decode_request(_tool_turn({"type": "thinking", "thinking": "hmm", "signature": "EqQBsig"}))
    assert fit_for_anthropic(request, anthropic_api=True) is request
