"""The router counts tokens exactly only where a comparison depends on it, and decides as if it always did."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ccrouter.catalog import Catalog
from ccrouter.codecs.anthropic.body import decode_request_body
from ccrouter.codecs.body import DecodeCache
from ccrouter.config import Settings
from ccrouter.messages import Message, MessagesRequest, TextBlock, Usage
from ccrouter.routing.candidates import candidates_for
from ccrouter.routing.scenarios import SESSION_MIN_TOKENS, Router
from ccrouter.routing.session import SessionUsage
from ccrouter.testing.claude_code import claude_code_request
from ccrouter.tokens import TokenCounter

HISTORY = "word " * 6000  # 6,000 tokens
DEEPSEEK, OTHER = "https://api.deepseek.com/v1", "http://127.0.0.1:9/v1"
NEW = "please check the failing test in routing and fix it, then run the whole suite again"


def _settings(threshold: int = 60_000, *, extra_models: list[Any] | None = None) -> Settings:
    return Settings.model_validate(
        {
            "providers": [
                {"name": "deepseek", "type": "openai", "base_url": DEEPSEEK, "models": ["deepseek-chat"]},
                {"name": "gemini", "type": "gemini", "models": ["gemini-2.5-pro"]},
                {"name": "other", "type": "openai", "base_url": OTHER, "models": extra_models or ["gpt-4o"]},
            ],
            "router": {
                "default": "deepseek,deepseek-chat",
                "long_context": "gemini,gemini-2.5-pro",
                "long_context_threshold": threshold,
            },
        }
    )


def _request(history: str, new: str) -> MessagesRequest:
    messages = [Message("user", [TextBlock(history)]), Message("assistant", [TextBlock("ok")])]
    return MessagesRequest("claude-sonnet-4-5", [*messages, Message("user", [TextBlock(new)])], 1000)


def _warm_counter(history: str) -> TokenCounter:
    """A counter that has seen the history (and an earlier last turn), not ``NEW``."""
    counter = TokenCounter()
    counter.count_request(_request(history, "an earlier question"))
    return counter


@pytest.mark.parametrize("offset", [-1, 0, 1])
async def test_long_context_near_the_threshold_is_decided_on_the_exact_count(offset: int) -> None:
    request = _request(HISTORY, NEW)
    exact = TokenCounter().count_request(request)
    threshold = exact + offset  # the count just above, equal to, just below the threshold
    counter = _warm_counter(HISTORY)
    assert counter.estimate_request(request).above(threshold) is None  # the new text straddles it
    encoded = counter.encoded
    router = Router(_settings(threshold), Catalog.load(), counter, SessionUsage())
    decision = await router.route(request, session_id=None)
    assert decision.scenario == ("long_context" if exact > threshold else "default")
    assert decision.tokens == exact
    assert counter.encoded == encoded + 1  # only the new text was encoded
    if decision.scenario == "long_context":
        assert decision.reason == f"long context: {exact:,} tokens > {threshold:,}"


@pytest.mark.parametrize("offset", [-1000, 1000])
async def test_long_context_far_from_the_threshold_encodes_nothing(offset: int) -> None:
    request = _request(HISTORY, NEW)
    exact = TokenCounter().count_request(request)
    counter = _warm_counter(HISTORY)
    encoded = counter.encoded
    router = Router(_settings(exact + offset), Catalog.load(), counter, SessionUsage())
    decision = await router.route(request, session_id=None)
    if offset < 0:  # long context: its reason shows the exact count, so it is resolved
        assert decision.scenario == "long_context"
        assert decision.tokens == exact
        assert counter.encoded == encoded + 1
    else:
        assert decision.scenario == "default"
        estimate = counter.estimate_request(request)
        assert decision.tokens is not None
        assert estimate.low <= decision.tokens <= estimate.high
        assert counter.encoded == encoded


def _session_request(new_tokens: int) -> MessagesRequest:
    # " x" is one cl100k token, so the new text adds exactly ``new_tokens``.
    return _request("word " * (SESSION_MIN_TOKENS - 60), " x" * new_tokens)


@pytest.mark.parametrize("offset", [-1, 0, 1])
async def test_session_rule_near_its_minimum_is_decided_on_the_exact_count(offset: int) -> None:
    base = TokenCounter().count_request(_session_request(0))
    request = _session_request(SESSION_MIN_TOKENS + offset - base)
    exact = TokenCounter().count_request(request)
    assert exact == SESSION_MIN_TOKENS + offset
    counter = TokenCounter()
    counter.count_request(_session_request(0))
    assert counter.estimate_request(request).above(SESSION_MIN_TOKENS) is None
    sessions = SessionUsage()
    sessions.record("s1", Usage(input_tokens=200, cache_read_input_tokens=79_800))
    router = Router(_settings(60_000), Catalog.load(), counter, sessions)
    decision = await router.route(request, session_id="s1")
    assert decision.scenario == ("long_context" if exact > SESSION_MIN_TOKENS else "default")
    assert decision.tokens == exact


async def test_session_rule_far_from_its_minimum_encodes_nothing() -> None:
    request = _request(HISTORY, NEW)  # ~6,000 tokens: far below SESSION_MIN_TOKENS
    counter = _warm_counter(HISTORY)
    encoded = counter.encoded
    sessions = SessionUsage()
    sessions.record("s1", Usage(input_tokens=80_000))
    decision = await Router(_settings(60_000), Catalog.load(), counter, sessions).route(
        request, session_id="s1"
    )
    assert decision.scenario == "default"
    assert counter.encoded == encoded


@pytest.mark.parametrize("offset", [-1, 0, 1])
async def test_automatic_candidates_near_their_context_window_see_the_exact_count(offset: int) -> None:
    request = _request(HISTORY, NEW)
    exact = TokenCounter().count_request(request)
    window = exact + offset  # dropped when the count reaches the window
    settings = _settings(extra_models=[{"name": "small", "context_window": window}])
    counter = _warm_counter(HISTORY)
    assert counter.estimate_request(request).above(window - 1) is None
    decision = await Router(settings, Catalog.load(), counter, SessionUsage()).route(request, session_id=None)
    assert decision.scenario == "default"
    _, automatic = candidates_for(settings, Catalog.load(), request, decision)
    assert ("other,small" in [c.route for c in automatic]) == (exact < window)


async def test_claude_code_turn_with_shared_history_encodes_nothing() -> None:
    cache = DecodeCache()

    def turn(text: str) -> MessagesRequest:
        body = claude_code_request()
        body["messages"].append({"role": "user", "content": [{"type": "text", "text": text}]})
        return decode_request_body(orjson.dumps(body), cache)

    counter = TokenCounter()
    router = Router(_settings(), Catalog.load(), counter, SessionUsage())
    await router.route(turn("first question"), session_id=None)
    encoded, objects = counter.encoded, len(counter._objects)
    request = turn("next question!")
    decision = await router.route(request, session_id="s1")
    assert decision.scenario == "default"
    assert counter.encoded == encoded  # neither the new text nor anything else was tokenized
    assert len(counter._objects) == objects
    exact = TokenCounter().count_request(request)
    assert decision.tokens is not None
    assert abs(decision.tokens - exact) < len("next question!")
