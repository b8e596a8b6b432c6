"""Scenario rules as ordered objects: where a rule without an order goes, explicit orders, ties, and
what a rule may consult; the built-ins come from the plugin hook like a third party's."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ccrouter.catalog import Catalog
from ccrouter.config import Settings
from ccrouter.errors import CCRouterError, RoutingError
from ccrouter.messages import Message, MessagesRequest, TextBlock, ThinkingConfig
from ccrouter.plugins import Extensions, Registry, load_plugins
from ccrouter.routing import rules
from ccrouter.routing.rules import RouteDecision, RoutingRule, RuleContext
from ccrouter.routing.scenarios import Router
from ccrouter.routing.session import SessionUsage
from ccrouter.tokens import TokenCounter

TAG = "<CCR-SUBAGENT-MODEL>groq,llama-3.3-70b-versatile</CCR-SUBAGENT-MODEL>"


def _settings(**router: object) -> Settings:
    return Settings.model_validate(
        {
            "providers": [
                {"name": "deepseek", "type": "openai", "base_url": "https://api.deepseek.com/v1"},
                {"name": "groq", "type": "openai", "base_url": "https://api.groq.com/openai/v1"},
            ],
            "router": {"default": "deepseek,deepseek-chat", "think": "deepseek,deepseek-reasoner", **router},
        }
    )


def _request(
    text: str = "hello", *, model: str = "claude-opus-4-6", thinking: bool = False
) -> MessagesRequest:
    return MessagesRequest(
        model=model,
        max_tokens=100,
        messages=[Message("user", [TextBlock(text)])],
        thinking=ThinkingConfig("adaptive" if thinking else "disabled"),
    )


@dataclass
class Pick:
    """A plugin's rule: always decides groq (records what it saw)."""

    name: str
    seen: list[str]

    async def decide(self, request: MessagesRequest, context: RuleContext) -> RouteDecision | None:
        block = request.messages[0].content[0]
        assert isinstance(block, TextBlock)
        self.seen.append(block.text)
        return context.decide("plugin", "groq,llama-3.3-70b-versatile", f"{self.name} decided")


@dataclass
class Ordered(Pick):
    order: int = 0


def _router(settings: Settings, *extra: RoutingRule) -> Router:
    """The rules as the gateway gathers them: the built-ins' hook, then the extra ones."""
    built = Extensions.build(Registry.build(load_plugins(entry_points=False)), settings).rules
    return Router(settings, Catalog.load(), TokenCounter(), SessionUsage(), rules=[*built, *extra])


def test_the_built_in_rules_come_from_the_plugin_hook_in_order() -> None:
    router = _router(_settings(background="groq,llama-3.3-70b-versatile", long_context="groq,x"))
    assert [rule.name for rule in router.rules] == [
        "explicit",
        "long_context",
        "subagent",
        "subagent_route",
        "background",
        "web_search",
        "think",
        "image",
        "tier",
        "default",
    ]


async def test_a_rule_without_order_goes_after_the_subagent_tag_and_before_the_features() -> None:
    seen: list[str] = []
    router = _router(_settings(), Pick("mine", seen))
    names = [rule.name for rule in router.rules]
    assert names[names.index("subagent") :][:4] == ["subagent", "subagent_route", "mine", "background"]
    decision = await router.route(_request(thinking=True), session_id=None)
    assert (decision.scenario, decision.reason) == ("plugin", "mine decided")
    # Earlier rules still win: an explicit provider,model, the subagent tag (removed as ever).
    decision = await router.route(_request(model="deepseek,deepseek-chat"), session_id=None)
    assert decision.scenario == "explicit"
    request = _request(TAG + "review this")
    assert (await router.route(request, session_id=None)).scenario == "subagent"
    assert seen == ["hello"]
    assert request.messages[0].content[0] == TextBlock("review this")


async def test_an_order_places_a_rule_exactly_and_ties_keep_registration_order() -> None:
    seen: list[str] = []
    first, second = (
        Ordered("first", seen, order=rules.CUSTOM - 1),
        Ordered("second", seen, order=rules.CUSTOM - 1),
    )
    router = _router(_settings(), first, second)
    assert [rule.name for rule in router.rules][:3] == ["first", "second", "explicit"]
    request = _request(TAG + "x", model="deepseek,deepseek-chat")
    decision = await router.route(request, session_id=None)
    assert decision.reason == "first decided"
    # It saw the request as the client sent it; the tag is gone once a rule has decided.
    assert seen == [TAG + "x"]
    assert request.messages[0].content[0] == TextBlock("x")


async def test_no_rule_deciding_is_a_routing_error_and_a_failing_rule_a_clean_one() -> None:
    settings = _settings()
    empty = Router(settings, Catalog.load(), TokenCounter(), SessionUsage(), rules=[])
    with pytest.raises(RoutingError, match=r"no routing rule decided where the request goes \(rules: none\)"):
        await empty.route(_request(), session_id=None)

    class Boom:
        name = "boom"

        async def decide(self, request: MessagesRequest, context: RuleContext) -> RouteDecision | None:
            raise KeyError("missing")

    router = Router(
        settings, Catalog.load(), TokenCounter(), SessionUsage(), rules=[Boom()], owner=lambda _: "my-plugin"
    )
    with pytest.raises(CCRouterError) as caught:
        await router.route(_request(), session_id=None)
    assert (caught.value.status, caught.value.error_type) == (500, "api_error")
    assert (
        caught.value.message
        == "routing rule 'boom' of plugin 'my-plugin' failed: KeyError (see the gateway log)"
    )


async def test_a_bad_custom_hook_names_itself_at_start() -> None:
    settings = _settings(custom="ccr_no_such_module_xyz:route")
    with pytest.raises(CCRouterError, match=r"^router\.custom: cannot import 'ccr_no_such_module_xyz'"):
        Extensions.build(Registry.build(load_plugins(entry_points=False)), settings)
