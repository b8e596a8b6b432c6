"""`config import-ccr` on a claude-code-router config that uses its transformers: they are kept, the
report names only what has no equivalent, and the converted configuration serves requests with the
transformers' effects visible upstream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from gateway_support import GatewayFactory

from ccrouter.ccr_import import CcrImport, convert_ccr, parse_ccr_json
from ccrouter.config_file import settings_from_data
from ccrouter.testing import FakeUpstream, Reply, ToolCall

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "ccr_config_transformers.json"
KEYS = ["DEEPSEEK_API_KEY", "OPENROUTER_API_KEY", "GROQ_API_KEY", "MODELSCOPE_API_KEY", "SILICONFLOW_API_KEY"]
HEADERS = {"anthropic-version": "2023-06-01", "content-type": "application/json"}


@pytest.fixture
def converted() -> CcrImport:
    return convert_ccr(parse_ccr_json(FIXTURE.read_text(encoding="utf-8")))


def _providers(result: CcrImport) -> dict[str, dict[str, Any]]:
    return {provider["name"]: provider for provider in result.document["providers"]}


def test_the_transformers_are_kept(converted: CcrImport) -> None:
    providers = _providers(converted)
    assert providers["deepseek"]["vendor"] == "deepseek"
    assert providers["deepseek"]["models"] == [
        {"name": "deepseek-chat", "transformers": ["tooluse"]},
        "deepseek-reasoner",
    ]
    assert providers["openrouter"]["vendor"] == "openrouter"
    assert providers["openrouter"]["transformers"] == ["cleancache"]
    assert providers["openrouter"]["models"][0] == {
        "name": "moonshotai/kimi-k2",
        "transformers": [["customparams", {"provider": {"only": ["moonshotai/fp8"]}}]],
    }
    assert providers["groq"]["vendor"] == "groq"
    assert providers["groq"]["transformers"] == [
        ["sampling", {"temperature": 0.6, "top_p": 0.95, "top_k": 20}]
    ]
    assert providers["modelscope"]["transformers"] == ["enhancetool"]
    assert providers["modelscope"]["models"][1] == {
        "name": "Qwen/Qwen3-235B-A22B-Thinking-2507",
        "max_output_tokens": 65536,
        "transformers": ["reasoning"],
    }
    assert providers["siliconflow"]["transformers"] == [
        ["customparams", {"chat_template_kwargs": {"enable_thinking": False}}]
    ]
    assert providers["gemini"]["type"] == "gemini"


def test_the_report_names_only_what_has_no_equivalent(converted: CcrImport) -> None:
    warnings = converted.warnings
    assert len(warnings) == 4, warnings
    assert warnings[0].startswith("Providers[6] (custom-js): transformer 'chutes-glm' has no equivalent")
    assert warnings[1].startswith(
        "CUSTOM_ROUTER_PATH ($HOME/.claude-code-router/custom-router.js) is a JavaScript"
    )
    assert "router.custom: 'package.module:function'" in warnings[1]
    assert warnings[2] == "LOG has no ccrouter equivalent; ignored"
    assert warnings[3].startswith("transformers (JavaScript transformer plugins) cannot run here")
    notes = "\n".join(converted.notes)
    for name in ("deepseek", "openrouter", "groq", "gemini", "maxtoken", "streamoptions"):
        assert f"transformer '{name}'" in notes


async def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/v1/messages", data=orjson.dumps(body), headers=HEADERS) as response,
    ):
        text = await response.text()
        assert response.status == 200, text
        return dict(orjson.loads(text))


async def test_the_converted_config_serves(
    converted: CcrImport, fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    env = {"FAKE_URL": fake.url, **{key: f"sk-{key.lower()}" for key in KEYS}, "GEMINI_API_KEY": "AIza-test"}
    settings = settings_from_data(converted.document, env, source="converted")
    url = await gateway(settings)
    tool = {"name": "read", "input_schema": {"type": "object", "$schema": "x"}}
    ask: dict[str, Any] = {"max_tokens": 100_000, "messages": [{"role": "user", "content": "hi"}]}

    # deepseek-chat: tooluse (its model's), behind the deepseek vendor profile (8K output cap).
    fake.script(Reply(tool_calls=[ToolCall("ExitTool", {"response": "No tool needed."})]))
    answer = await _post(url, {**ask, "model": "deepseek,deepseek-chat", "tools": [tool]})
    assert answer["content"] == [{"type": "text", "text": "No tool needed."}]
    sent = fake.requests[-1].body
    assert sent["tool_choice"] == "required"
    assert sent["max_tokens"] == 8192

    # openrouter kimi-k2: its provider routing option is in the body.
    fake.script(Reply(text="ok"))
    await _post(url, {**ask, "model": "openrouter,moonshotai/kimi-k2"})
    assert fake.requests[-1].body["provider"] == {"only": ["moonshotai/fp8"]}

    # groq: sampling forced over the client's temperature; top_k sent as a body field.
    fake.script(Reply(text="ok"))
    await _post(
        url, {**ask, "model": "groq,moonshotai/kimi-k2-instruct", "temperature": 1.0, "tools": [tool]}
    )
    sent = fake.requests[-1].body
    assert (sent["temperature"], sent["top_p"], sent["top_k"]) == (0.6, 0.95, 20)
    assert "$schema" not in sent["tools"][0]["function"]["parameters"]  # the groq vendor profile

    # modelscope thinking model: reasoning's switch, and maxtoken as max_output_tokens.
    fake.script(Reply(text="ok"))
    thinking = {"type": "enabled", "budget_tokens": 4096}
    await _post(url, {**ask, "model": "modelscope,Qwen/Qwen3-235B-A22B-Thinking-2507", "thinking": thinking})
    sent = fake.requests[-1].body
    assert sent["enable_thinking"] is True
    assert sent["max_tokens"] == 65536

    # siliconflow: customparams.
    fake.script(Reply(text="ok"))
    await _post(url, {**ask, "model": "siliconflow,zai-org/GLM-4.6"})
    assert fake.requests[-1].body["chat_template_kwargs"] == {"enable_thinking": False}
