"""Claude Code's ``max_tokens: 1`` model probe succeeds on every target.

Interactive Claude Code 2.1.332 sends it (non-streamed, ``"Hi"``) when ``/model`` names a model it does
not know (``tests/fixtures/claude_code_tool_search.json``, ``probe``); an error there makes the pick
fail. The fakes behave as the providers do with so small a budget: OpenAI answers a reasoning model
with a 400 ``Could not finish the message because max_tokens or model output limit was reached``, and
Gemini answers ``MAX_TOKENS`` with a candidate that has no parts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from gateway_support import GatewayFactory, settings_for

from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream
from ccrouter.testing.script import Fault, Reply
from ccrouter.testing.wire_openai import OUTPUT_LIMIT_MESSAGE, error_body

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code_tool_search.json"
PROBE: dict[str, Any] = json.loads(FIXTURE.read_text())["probe"]["body"]


def reasoning_openai(fake_url: str) -> Settings:
    return Settings.model_validate(
        {
            "providers": [
                {
                    "name": "oai",
                    "type": "openai",
                    "vendor": "openai",
                    "base_url": fake_url + "/v1",
                    "api_key": "sk-test-secret-key",
                    "models": ["gpt-5"],
                }
            ],
            "router": {"default": "oai,gpt-5"},
        }
    )


async def probe(url: str, *, stream: bool) -> tuple[int, Any]:
    body = {**PROBE, "stream": True} if stream else PROBE
    headers = {"anthropic-version": "2023-06-01", "x-api-key": "client"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/v1/messages?beta=true", json=body, headers=headers) as response,
    ):
        raw = await response.read()
    if not stream:
        return response.status, json.loads(raw)
    events = [json.loads(line[len(b"data: ") :]) for line in raw.splitlines() if line.startswith(b"data: ")]
    return response.status, events


def assert_max_tokens_message(status: int, answer: Any, *, stream: bool) -> None:
    assert status == 200, answer
    if not stream:
        assert answer["type"] == "message"
        assert answer["role"] == "assistant"
        assert answer["stop_reason"] == "max_tokens"
        assert isinstance(answer["content"], list)
        return
    kinds = [event["type"] for event in answer]
    assert kinds[0] == "message_start"
    assert kinds[-2:] == ["message_delta", "message_stop"]
    assert "error" not in kinds
    assert answer[-2]["delta"]["stop_reason"] == "max_tokens"


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_reasoning_model_out_of_output_tokens(
    stream: bool, fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    fake.script(Fault("status", status=400, body=error_body(400, message=OUTPUT_LIMIT_MESSAGE)))
    url = await gateway(reasoning_openai(fake.url))
    status, answer = await probe(url, stream=stream)
    assert_max_tokens_message(status, answer, stream=stream)
    sent = fake.requests[-1].body
    assert sent["max_completion_tokens"] == 1
    assert fake.pending == 0


async def test_other_openai_400s_stay_errors(fake: FakeUpstream, gateway: GatewayFactory) -> None:
    fake.script(Fault("status", status=400, body=error_body(400, message="Invalid 'messages'.")))
    url = await gateway(reasoning_openai(fake.url))
    status, answer = await probe(url, stream=False)
    assert status == 400
    assert answer["type"] == "error"


@pytest.mark.parametrize("stream", [False, True])
async def test_gemini_max_tokens_without_parts(
    stream: bool, fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    fake.script(Reply(text="", stop="length", output_tokens=1))
    url = await gateway(settings_for(fake.url, "gemini"))
    status, answer = await probe(url, stream=stream)
    assert_max_tokens_message(status, answer, stream=stream)
    sent = fake.requests[-1].body
    assert sent["generationConfig"]["maxOutputTokens"] == 1
