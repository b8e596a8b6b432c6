from __future__ import annotations

from typing import Any

import pytest

from ccrouter.catalog import Catalog
from ccrouter.config import Settings
from ccrouter.errors import RoutingError
from ccrouter.messages import (
    ImageBlock,
    Message,
    MessagesRequest,
    TextBlock,
    ThinkingConfig,
    Tool,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)
from ccrouter.routing.scenarios import SESSION_MIN_TOKENS, RouteDecision, Router
from ccrouter.routing.session import SessionUsage
from ccrouter.tokens import TokenCounter

TAG = "<CCR-SUBAGENT-MODEL>groq,llama-3.3-70b-versatile</CCR-SUBAGENT-MODEL>"
SCOUT = "meta-llama/llama-4-scout-17b-16e-instruct"
ROUTES: dict[str, Any] = {
    "default": "deepseek,deepseek-chat",
    "background": "groq,llama-3.3-70b-versatile",
    "think": "deepseek,deepseek-reasoner",
    "long_context": "gemini,gemini-2.5-pro",
    "long_context_threshold": 5000,
    "web_search": "gemini,gemini-2.5-flash",
    "image": f"groq,{SCOUT}",
}


def _settings(**router: Any) -> Settings:
    return Settings.model_validate(
        {
            "providers": [
                {
                    "name": "anthropic",
                    "type": "anthropic",
                    "models": ["claude-sonnet-4-5", "claude-haiku-4-5"],
                },
                {
                    "name": "deepseek",
                    "type": "openai",
                    "base_url": "https://api.deepseek.com/v1",
                    "models": ["deepseek-chat", "deepseek-reasoner"],
                },
                {
                    "name": "groq",
                    "type": "openai",
                    "base_url": "https://api.groq.com/openai/v1",
                    "models": ["llama-3.3-70b-versatile", SCOUT],
                },
                {"name": "gemini", "type": "gemini", "models": ["gemini-2.5-pro", "gemini-2.5-flash"]},
                {"name": "ollama", "type": "openai", "base_url": "http://127.0.0.1:11434/v1"},
            ],
            "router": {**ROUTES, **router},
        }
    )


def _router(sessions: SessionUsage | None = None, **router: Any) -> Router:
    return Router(_settings(**router), Catalog.load(), TokenCounter(), sessions or SessionUsage())


def _request(
    text: str = "hello",
    *,
    model: str = "claude-opus-4-6",
    system: list[str] | None = None,
    thinking: str = "disabled",
    tools: list[Tool] | None = None,
    messages: list[Message] | None = None,
) -> MessagesRequest:
    return MessagesRequest(
        model=model,
        max_tokens=32000,
        system=[TextBlock(s) for s in system or []],
        messages=messages or [Message("user", [TextBlock(text)])],
        thinking=ThinkingConfig(type=thinking),  # type: ignore[arg-type]
        tools=tools or [],
    )


def _route(decision: RouteDecision) -> tuple[str, str, str]:
    return decision.scenario, decision.provider, decision.model


WEB_SEARCH = Tool(name="web_search", server_type="web_search_20250305", raw={"type": "web_search_20250305"})
LONG_TEXT = "word " * 6000  # 6,000 tokens: over the test threshold of 5,000


# ---------------------------------------------------------------------- one test per scenario


async def test_default() -> None:
    decision = await _router().route(_request(), session_id=None)
    assert _route(decision) == ("default", "deepseek", "deepseek-chat")
    assert decision.reason == "default route"


async def test_explicit_provider_model() -> None:
    decision = await _router().route(_request(model="groq,llama-3.3-70b-versatile"), session_id=None)
    assert _route(decision) == ("explicit", "groq", "llama-3.3-70b-versatile")
    assert decision.tokens is None  # decided before any counting


async def test_explicit_with_spaces_and_a_provider_that_lists_no_models() -> None:
    decision = await _router().route(_request(model="ollama, qwen3:8b"), session_id=None)
    assert _route(decision) == ("explicit", "ollama", "qwen3:8b")


async def test_bare_model_name_listed_by_a_provider() -> None:
    decision = await _router(match_model_names=True).route(
        _request(model="deepseek-reasoner"), session_id=None
    )
    assert _route(decision) == ("explicit", "deepseek", "deepseek-reasoner")
    assert decision.reason == "model 'deepseek-reasoner' is listed by provider 'deepseek'"


async def test_explicit_unknown_provider_names_the_configured_ones() -> None:
    with pytest.raises(RoutingError) as caught:
        await _router().route(_request(model="openrouter,some/model"), session_id=None)
    assert caught.value.status == 400
    assert caught.value.message == (
        "request model 'openrouter,some/model': unknown provider 'openrouter'"
        " (configured: anthropic, deepseek, groq, gemini, ollama)"
    )


async def test_explicit_unknown_model_names_the_listed_ones() -> None:
    with pytest.raises(RoutingError, match=r"provider 'groq' has no model 'llama-2' \(it lists: llama-3\.3"):
        await _router().route(_request(model="groq,llama-2"), session_id=None)


async def test_long_context_by_token_count() -> None:
    request = _request(LONG_TEXT)
    expected = TokenCounter().count_request(request)
    decision = await _router().route(request, session_id=None)
    assert _route(decision) == ("long_context", "gemini", "gemini-2.5-pro")
    assert decision.tokens == expected
    assert decision.reason == f"long context: {expected:,} tokens > 5,000"


async def test_long_context_by_session_usage() -> None:
    sessions = SessionUsage()
    sessions.record("s1", Usage(input_tokens=200, cache_read_input_tokens=79_800))
    request = _request("word " * (SESSION_MIN_TOKENS + 500))  # under the threshold by itself
    router = _router(sessions, long_context_threshold=60_000)
    decision = await router.route(request, session_id="s1")
    assert _route(decision) == ("long_context", "gemini", "gemini-2.5-pro")
    assert decision.reason == "long context: the session's last turn used 80,000 input tokens > 60,000"
    # Another session, or none, is routed on the request alone.
    assert (await router.route(request, session_id="s2")).scenario == "default"
    assert (await router.route(request, session_id=None)).scenario == "default"


async def test_session_usage_ignored_for_a_small_request() -> None:
    # After /compact the history is small: claude-code-router stops following the stale usage.
    sessions = SessionUsage()
    sessions.record("s1", Usage(input_tokens=80_000))
    decision = await _router(sessions, long_context_threshold=60_000).route(_request(), session_id="s1")
    assert decision.scenario == "default"


async def test_no_token_count_without_a_long_context_route() -> None:
    decision = await _router(long_context=None).route(_request(LONG_TEXT), session_id=None)
    assert decision.scenario == "default"
    assert decision.tokens is None


async def test_subagent_tag() -> None:
    request = _request(system=["You are Claude Code.", f"{TAG}You are a reviewer."])
    decision = await _router().route(request, session_id=None)
    assert _route(decision) == ("subagent", "groq", "llama-3.3-70b-versatile")
    assert [block.text for block in request.system] == ["You are Claude Code.", "You are a reviewer."]


async def test_subagent_tag_is_validated() -> None:
    request = _request(system=["<CCR-SUBAGENT-MODEL>nope,x</CCR-SUBAGENT-MODEL>Hi"])
    with pytest.raises(RoutingError, match=r"^subagent tag: unknown provider 'nope'"):
        await _router().route(request, session_id=None)


async def test_background() -> None:
    decision = await _router().route(_request(model="claude-3-5-haiku-20241022"), session_id=None)
    assert _route(decision) == ("background", "groq", "llama-3.3-70b-versatile")
    assert decision.reason == "background: 'claude-3-5-haiku-20241022' is a Haiku model"


async def test_web_search_server_tool() -> None:
    decision = await _router().route(_request(tools=[WEB_SEARCH]), session_id=None)
    assert _route(decision) == ("web_search", "gemini", "gemini-2.5-flash")
    assert decision.reason == "web search: the request offers the web_search_20250305 tool"


async def test_web_search_client_tool_by_name() -> None:
    tool = Tool(name="web_search", description="Search", input_schema={"type": "object"})
    decision = await _router().route(_request(tools=[tool]), session_id=None)
    assert decision.scenario == "web_search"


async def test_think() -> None:
    decision = await _router().route(_request(thinking="adaptive"), session_id=None)
    assert _route(decision) == ("think", "deepseek", "deepseek-reasoner")
    assert decision.reason == "think: the request asks for adaptive thinking"


async def test_image_when_the_default_model_lacks_vision() -> None:
    messages = [
        Message("user", [TextBlock("what is this?"), ImageBlock(media_type="image/png", data="iVBO")])
    ]
    decision = await _router().route(_request(messages=messages), session_id=None)
    assert _route(decision) == ("image", "groq", SCOUT)
    assert decision.reason == "image: the last user message has an image and 'deepseek-chat' lacks vision"


async def test_image_in_a_tool_result() -> None:
    messages = [
        Message("user", [TextBlock("take a screenshot")]),
        Message("assistant", [ToolUseBlock("toolu_1", "Screenshot", {})]),
        Message("user", [ToolResultBlock("toolu_1", [ImageBlock(media_type="image/png", data="iVBO")])]),
    ]
    assert (await _router().route(_request(messages=messages), session_id=None)).scenario == "image"


async def test_image_in_an_earlier_message_only_is_default() -> None:
    messages = [
        Message("user", [ImageBlock(media_type="image/png", data="iVBO")]),
        Message("assistant", [TextBlock("A cat.")]),
        Message("user", [TextBlock("thanks")]),
    ]
    assert (await _router().route(_request(messages=messages), session_id=None)).scenario == "default"


async def test_image_stays_on_a_default_model_with_vision() -> None:
    messages = [Message("user", [ImageBlock(media_type="image/png", data="iVBO")])]
    router = _router(default="gemini,gemini-2.5-flash")
    decision = await router.route(_request(messages=messages), session_id=None)
    assert _route(decision) == ("default", "gemini", "gemini-2.5-flash")


async def test_unconfigured_scenarios_fall_through_to_default() -> None:
    router = _router(background=None, think=None, web_search=None, image=None, long_context=None)
    messages = [Message("user", [ImageBlock(media_type="image/png", data="iVBO")])]
    request = _request(
        model="claude-haiku-4-5-20251001", thinking="enabled", tools=[WEB_SEARCH], messages=messages
    )
    assert (await router.route(request, session_id=None)).scenario == "default"


# ---------------------------------------------------------------------- precedence where two apply


async def test_explicit_beats_long_context() -> None:
    request = _request(LONG_TEXT, model="deepseek,deepseek-chat")
    assert (await _router().route(request, session_id=None)).scenario == "explicit"


async def test_long_context_beats_subagent_and_the_tag_is_still_removed() -> None:
    request = _request(LONG_TEXT, system=[f"{TAG}Reviewer."])
    decision = await _router().route(request, session_id=None)
    assert decision.scenario == "long_context"
    assert [block.text for block in request.system] == ["Reviewer."]


async def test_subagent_beats_background() -> None:
    request = _request(model="claude-haiku-4-5", system=[f"{TAG}Reviewer."])
    # claude-haiku-4-5 is listed by the anthropic provider: explicit only when bare names match.
    assert (await _router(match_model_names=True).route(request, session_id=None)).scenario == "explicit"
    request = _request(model="claude-haiku-4-5", system=[f"{TAG}Reviewer."])
    assert (await _router().route(request, session_id=None)).scenario == "subagent"


async def test_background_beats_web_search_and_think() -> None:
    request = _request(model="claude-haiku-4-5-20251001", thinking="enabled", tools=[WEB_SEARCH])
    assert (await _router().route(request, session_id=None)).scenario == "background"


async def test_web_search_beats_think() -> None:
    request = _request(thinking="adaptive", tools=[WEB_SEARCH])
    assert (await _router().route(request, session_id=None)).scenario == "web_search"


async def test_think_beats_image() -> None:
    messages = [Message("user", [ImageBlock(media_type="image/png", data="iVBO")])]
    request = _request(thinking="adaptive", messages=messages)
    assert (await _router().route(request, session_id=None)).scenario == "think"


async def test_a_long_context_decision_carries_its_token_count_to_later_scenarios() -> None:
    decision = await _router().route(_request(thinking="adaptive"), session_id=None)
    assert decision.scenario == "think"
    assert decision.tokens is not None
    assert 0 < decision.tokens < 5000


async def test_bare_model_names_are_ignored_by_default() -> None:
    # claude-code-router compatible: a listed claude-* name does not take the request off its scenario.
    decision = await _router().route(_request(model="claude-haiku-4-5"), session_id=None)
    assert decision.scenario == "background"
