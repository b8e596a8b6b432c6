"""Converting a claude-code-router config.json into ccrouter's YAML document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ccrouter.ccr_import import import_ccr, parse_ccr_json
from ccrouter.config_file import settings_from_data
from ccrouter.errors import ConfigError

FIXTURE = Path(__file__).parent / "fixtures" / "ccr_config.json"


@pytest.fixture
def converted() -> tuple[dict[str, Any], list[str]]:
    return import_ccr(parse_ccr_json(FIXTURE.read_text(encoding="utf-8")))


def by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {provider["name"]: provider for provider in document["providers"]}


def test_providers(converted: tuple[dict[str, Any], list[str]]) -> None:
    providers = by_name(converted[0])
    assert list(providers) == [
        "openrouter",
        "deepseek",
        "ollama",
        "gemini",
        "deepseek-anthropic",
        "modelscope",
        "siliconflow",
    ]
    assert providers["openrouter"] == {
        "name": "openrouter",
        "type": "openai",
        "vendor": "openrouter",
        "base_url": "https://openrouter.ai/api/v1",
        "api_key": "${OPENROUTER_API_KEY}",
        "models": [
            "google/gemini-2.5-pro-preview",
            "anthropic/claude-sonnet-4",
            "anthropic/claude-3.7-sonnet:thinking",
        ],
        "headers": {"HTTP-Referer": "https://example.com", "X-Title": "claude-code-router"},
    }
    assert providers["deepseek"] == {
        "name": "deepseek",
        "type": "openai",
        "vendor": "deepseek",
        "base_url": "https://api.deepseek.com",
        "api_key": "${DEEPSEEK_API_KEY}",
        # ccr's deepseek transformer is the vendor profile; tooluse is kept for its model.
        "models": [{"name": "deepseek-chat", "transformers": ["tooluse"]}, "deepseek-reasoner"],
    }
    assert providers["ollama"]["base_url"] == "http://localhost:11434/v1"
    assert providers["gemini"]["type"] == "gemini"
    assert providers["gemini"]["base_url"] == "https://generativelanguage.googleapis.com/v1beta"
    assert providers["deepseek-anthropic"]["type"] == "anthropic"
    assert providers["deepseek-anthropic"]["base_url"] == "https://api.deepseek.com/anthropic"


def test_maxtoken_becomes_max_output_tokens(converted: tuple[dict[str, Any], list[str]]) -> None:
    providers = by_name(converted[0])
    assert providers["modelscope"]["models"] == [
        {"name": "Qwen/Qwen3-Coder-480B-A35B-Instruct", "max_output_tokens": 65536},
        {
            "name": "Qwen/Qwen3-235B-A22B-Thinking-2507",
            "max_output_tokens": 65536,
            "transformers": ["reasoning"],
        },
    ]
    assert providers["modelscope"]["transformers"] == ["enhancetool"]
    assert providers["siliconflow"]["models"] == [
        {"name": "moonshotai/Kimi-K2-Instruct", "max_output_tokens": 16384}
    ]
    assert "api_key" not in providers["siliconflow"]  # "" in ccr means no key


def test_router_and_server(converted: tuple[dict[str, Any], list[str]]) -> None:
    document = converted[0]
    assert document["router"] == {
        "default": "deepseek,deepseek-chat",
        "background": "ollama,qwen2.5-coder:latest",
        "think": "deepseek,deepseek-reasoner",
        "long_context": "openrouter,google/gemini-2.5-pro-preview",
        "long_context_threshold": 60000,
        "web_search": "gemini,gemini-2.5-flash",
        "image": "gemini,gemini-2.5-pro",
        # ccr's top-level fallback maps onto router.fallback (issue 3).
        "fallback": {"default": ["openrouter,anthropic/claude-sonnet-4"]},
    }
    assert document["server"] == {
        "api_keys": ["${CCR_CLIENT_KEY}"],
        "host": "0.0.0.0",
        "port": 3457,
        "log_level": "warning",
    }
    # 600000 ms is the default total timeout already: nothing to write.
    assert all("timeouts" not in provider for provider in document["providers"])


def test_warnings_name_what_was_dropped(converted: tuple[dict[str, Any], list[str]]) -> None:
    warnings = converted[1]
    expected = [
        "Providers[0] (openrouter): transformers for model 'moonshotai/kimi-k2', which is not in models",
        "Providers[5] (modelscope): api_key is a literal secret",
        "CUSTOM_ROUTER_PATH ($HOME/.claude-code-router/custom-router.js) is a JavaScript router, which"
        " cannot run here; write it as a Python function and set router.custom",
        "LOG has no ccrouter equivalent",
        "NON_INTERACTIVE_MODE has no ccrouter equivalent",
        "PROXY_URL has no ccrouter equivalent",
    ]
    assert len(warnings) == len(expected)
    for warning, start in zip(warnings, expected, strict=True):
        assert warning.startswith(start), (warning, start)


def test_references_are_kept_not_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-real-secret")
    data = {
        "APIKEY": "${CLIENT}",
        "Providers": [
            {
                "name": "or",
                "api_base_url": "https://$HOST_VAR/v1/chat/completions",
                "api_key": "$OPENROUTER_API_KEY",
                "models": ["m"],
            }
        ],
        "Router": {"default": "or,m"},
    }
    document, _ = import_ccr(data)
    assert "sk-or-real-secret" not in repr(document)
    assert document["providers"][0]["api_key"] == "${OPENROUTER_API_KEY}"
    assert document["providers"][0]["base_url"] == "https://${HOST_VAR}/v1"
    assert document["server"]["api_keys"] == ["${CLIENT}"]


def test_converted_fixture_validates(converted: tuple[dict[str, Any], list[str]]) -> None:
    environ = {
        "CCR_CLIENT_KEY": "ck",
        "OPENROUTER_API_KEY": "a",
        "DEEPSEEK_API_KEY": "b",
        "GEMINI_API_KEY": "c",
    }
    settings = settings_from_data(converted[0], environ)
    assert settings.server.host == "0.0.0.0"
    assert settings.router.long_context == "openrouter,google/gemini-2.5-pro-preview"
    modelscope = settings.provider("modelscope")
    assert modelscope is not None
    assert modelscope.models[1].max_output_tokens == 65536


def test_wire_detection_from_url_alone() -> None:
    document, warnings = import_ccr(
        {
            "Providers": [
                {
                    "name": "claude",
                    "api_base_url": "https://api.anthropic.com/v1/messages",
                    "api_key": "$K",
                    "models": ["claude-sonnet-4-5"],
                },
                {
                    "name": "g",
                    "api_base_url": "https://generativelanguage.googleapis.com/v1beta/models",
                    "models": ["x"],
                },
                {
                    "name": "v",
                    "api_base_url": "https://vertex.example/v1",
                    "models": ["y"],
                    "transformer": {"use": ["vertex-gemini"]},
                },
            ],
            "Router": {"default": "claude,claude-sonnet-4-5", "bogus": "x,y"},
            "API_TIMEOUT_MS": 30000,
        }
    )
    claude, gemini, vertex = document["providers"]
    assert (claude["type"], claude["base_url"]) == ("anthropic", "https://api.anthropic.com")
    assert (gemini["type"], gemini["base_url"]) == (
        "gemini",
        "https://generativelanguage.googleapis.com/v1beta",
    )
    assert (vertex["type"], vertex["vendor"]) == ("gemini", "vertex")
    assert claude["timeouts"] == {"total": 30.0}
    assert any("Vertex AI needs its own credentials" in w for w in warnings)
    assert "Router.bogus has no ccrouter equivalent; dropped" in warnings


def test_host_without_apikey_stays_on_loopback() -> None:
    document, warnings = import_ccr({"HOST": "0.0.0.0", "Providers": [], "Router": {"default": "a,b"}})
    assert "server" not in document
    assert any(w.startswith("HOST '0.0.0.0' dropped") for w in warnings)


def test_parse_tolerates_comments_and_trailing_commas() -> None:
    text = (
        '{\n  // comment\n  "a": [1, 2,],\n  "b": "x, ]/* not a comment */",\n'
        '  /* block */ "c": {"d": 1,},\n}'
    )
    assert parse_ccr_json(text) == {"a": [1, 2], "b": "x, ]/* not a comment */", "c": {"d": 1}}


def test_parse_errors_point_at_the_problem() -> None:
    with pytest.raises(ConfigError, match=r"cfg.json: not valid JSON at line 3, column"):
        parse_ccr_json('{\n  "a": 1,\n  "b" 2\n}', source="cfg.json")
    with pytest.raises(ConfigError, match="expected a JSON object"):
        parse_ccr_json("[1, 2]")
