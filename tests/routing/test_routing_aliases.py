"""Picker aliases: ``claude-ccr-<provider>-<model>``, the table built from the configuration, and the
explicit rule routing a request that names one."""

from __future__ import annotations

from typing import Any

from ccrouter.catalog import Catalog
from ccrouter.config import Settings
from ccrouter.messages import Message, MessagesRequest, TextBlock, ThinkingConfig
from ccrouter.routing.aliases import Aliases, alias_for
from ccrouter.routing.scenarios import Router
from ccrouter.routing.session import SessionUsage
from ccrouter.tokens import TokenCounter

CATALOG = Catalog.load()  # read at import: no file read while the event loop runs


def _settings(providers: list[dict[str, Any]], **router: Any) -> Settings:
    return Settings.model_validate({"providers": providers, "router": router})


PROVIDERS: list[dict[str, Any]] = [
    {
        "name": "deepseek",
        "type": "openai",
        "base_url": "http://x/v1",
        "models": ["deepseek-chat", "deepseek-reasoner"],
    },
    {"name": "openrouter", "type": "openai", "base_url": "http://y/v1", "models": ["qwen/qwen3-coder:free"]},
    {"name": "ollama", "type": "openai", "base_url": "http://z/v1"},  # lists no models: accepts any
]


def test_alias_for_replaces_unsafe_characters() -> None:
    assert alias_for("deepseek", "deepseek-chat") == "claude-ccr-deepseek-deepseek-chat"
    assert alias_for("openrouter", "qwen/qwen3-coder:free") == "claude-ccr-openrouter-qwen-qwen3-coder-free"
    assert alias_for("my_prov", "gpt-4.1 mini") == "claude-ccr-my-prov-gpt-4.1-mini"
    assert alias_for("p", "é") == "claude-ccr-p--"


def test_table_lists_models_then_routes_no_provider_lists() -> None:
    settings = _settings(PROVIDERS, default="deepseek,deepseek-chat", think="ollama,qwen3:8b")
    aliases = Aliases.from_settings(settings)
    assert [r.route for r in aliases.routes] == [
        "deepseek,deepseek-chat",
        "deepseek,deepseek-reasoner",
        "openrouter,qwen/qwen3-coder:free",
        "ollama,qwen3:8b",  # a route of a provider listing no models is known by its route
    ]
    found = aliases.resolve("claude-ccr-ollama-qwen3-8b")
    assert found is not None
    assert (found.provider, found.model) == ("ollama", "qwen3:8b")
    assert aliases.resolve("claude-ccr-ollama-llama3") is None  # not configured: not an alias
    assert aliases.resolve("deepseek-chat") is None
    assert aliases.resolve("claude-sonnet-4-6") is None


def test_ambiguous_alias_keeps_the_first_configured() -> None:
    providers: list[dict[str, Any]] = [
        {"name": "a-b", "type": "openai", "base_url": "http://x/v1", "models": ["c"]},
        {"name": "a", "type": "openai", "base_url": "http://y/v1", "models": ["b-c", "b_c"]},
    ]
    aliases = Aliases.from_settings(_settings(providers, default="a,b_c"))
    found = aliases.resolve("claude-ccr-a-b-c")
    assert found is not None
    assert found.route == "a-b,c"
    assert [r.route for r in aliases.routes] == ["a-b,c"]  # the shadowed ones are not listed twice


def _request(model: str, *, thinking: str = "disabled") -> MessagesRequest:
    return MessagesRequest(
        model=model,
        max_tokens=1000,
        messages=[Message("user", [TextBlock("hi")])],
        thinking=ThinkingConfig(type=thinking),  # type: ignore[arg-type]
    )


async def test_a_request_naming_an_alias_routes_exactly_there() -> None:
    settings = _settings(
        PROVIDERS,
        default="deepseek,deepseek-chat",
        think="deepseek,deepseek-reasoner",
        background="ollama,qwen3:8b",
    )
    router = Router(settings, CATALOG, TokenCounter(), SessionUsage())
    # Thinking on would take it to the think route; the alias wins as an explicit choice does.
    decision = await router.route(
        _request("claude-ccr-openrouter-qwen-qwen3-coder-free", thinking="adaptive"), session_id=None
    )
    assert (decision.scenario, decision.provider, decision.model) == (
        "explicit",
        "openrouter",
        "qwen/qwen3-coder:free",
    )
    assert "claude-ccr-openrouter-qwen-qwen3-coder-free" in decision.reason
    routed = await router.route(_request("claude-ccr-ollama-qwen3-8b"), session_id=None)
    assert (routed.provider, routed.model) == ("ollama", "qwen3:8b")
    # An alias this configuration does not know (saved by Claude Code from another gateway, say) is
    # a model name like any other: scenario routing.
    unknown = await router.route(_request("claude-ccr-gone-model"), session_id=None)
    assert (unknown.scenario, unknown.provider, unknown.model) == ("default", "deepseek", "deepseek-chat")


def _long_request(model: str) -> MessagesRequest:
    return MessagesRequest(
        model=model, max_tokens=1000, messages=[Message("user", [TextBlock("word " * 3000)])]
    )


async def test_tier_ids_name_scenarios_and_leave_the_scenario_rules_to_decide() -> None:
    settings = _settings(
        PROVIDERS,
        default="deepseek,deepseek-chat",
        think="deepseek,deepseek-reasoner",
        background="ollama,qwen3:8b",
        long_context="openrouter,qwen/qwen3-coder:free",
        long_context_threshold=1000,
    )
    router = Router(settings, CATALOG, TokenCounter(), SessionUsage())

    async def route(request: MessagesRequest) -> tuple[str, str]:
        decision = await router.route(request, session_id=None)
        return decision.scenario, f"{decision.provider},{decision.model}"

    # The opus tier takes the think route without thinking asked; the sonnet tier the default route.
    assert await route(_request("claude-ccr-think")) == ("think", "deepseek,deepseek-reasoner")
    assert await route(_request("claude-ccr-default")) == ("default", "deepseek,deepseek-chat")
    assert await route(_request("claude-ccr-background")) == ("background", "ollama,qwen3:8b")
    # No router.subagent: the subagent tier is the default route.
    assert await route(_request("claude-ccr-subagent")) == ("default", "deepseek,deepseek-chat")
    # A tier does not pin: a long prompt still goes to the long-context route, thinking to think.
    long = ("long_context", "openrouter,qwen/qwen3-coder:free")
    assert await route(_long_request("claude-ccr-default")) == long
    assert await route(_long_request("claude-ccr-think")) == long
    assert await route(_request("claude-ccr-default", thinking="adaptive")) == (
        "think",
        "deepseek,deepseek-reasoner",
    )
    with_subagent = Router(
        _settings(PROVIDERS, default="deepseek,deepseek-chat", subagent="ollama,qwen3:8b"),
        CATALOG,
        TokenCounter(),
        SessionUsage(),
    )
    decision = await with_subagent.route(_request("claude-ccr-subagent"), session_id=None)
    assert (decision.scenario, decision.provider) == ("subagent", "ollama")
    # No think route configured: the opus tier is the default route.
    plain = Router(
        _settings(PROVIDERS, default="deepseek,deepseek-chat"), CATALOG, TokenCounter(), SessionUsage()
    )
    decision = await plain.route(_request("claude-ccr-think"), session_id=None)
    assert (decision.scenario, decision.provider, decision.model) == ("default", "deepseek", "deepseek-chat")
