"""Scenario routing, compatible with claude-code-router's ``Router`` section: the built-in rules and
the router that asks them in order.

The first rule that decides wins, in claude-code-router's order (``src/utils/router.ts``; the slots
are in ``routing.rules``):

1. the custom hook (``router.custom``), if it answers;
2. an explicit ``provider,model`` in the request's model, or its picker alias
   ``claude-ccr-<provider>-<model>`` (``routing.aliases``; an alias this configuration does not know
   is just a model name), or, with ``router.match_model_names``, a bare model name a provider lists;
3. long context: the request's token count, or the session's last reported input, over
   ``router.long_context_threshold`` (counted exactly only where the cache's bounds on the count
   cannot decide a comparison: see ``RuleServices.count``);
4. the subagent tag ``<CCR-SUBAGENT-MODEL>provider,model</CCR-SUBAGENT-MODEL>`` (in any system block
   or the first user message);
5. ``router.subagent``, for a request Claude Code's billing line marks ``cc_is_subagent=true``: after
   the tag (which names its route exactly) and long context (a subagent's route with a small window
   would fail), before everything else;
   (a plugin's rule without an ``order`` is asked here)
6. background: a Haiku model (Claude Code's small/fast model for titles and summaries);
7. web search: a web search tool is offered;
8. think: thinking is requested;
9. image: the last user message holds an image the default model cannot see;
10. a tier id (``claude-ccr-think``, ``claude-ccr-subagent``; ``ccrouter code`` sets them as Claude
    Code's opus tier and subagent model): that scenario's route (``claude-ccr-background``, the haiku
    tier, counts as a Haiku model in 6);
11. the default route.

A scenario's route is the request's project override (its profile's routes, then its
``x-ccrouter-routes`` header: ``routing.project``) or the config's ``router.<scenario>``; a rule whose
scenario has no route passes. The subagent tag is always removed from the request, whichever rule
decides.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ccrouter.catalog import Catalog
from ccrouter.config import Settings
from ccrouter.errors import CCRouterError, RoutingError
from ccrouter.messages import ImageBlock, MessagesRequest, ToolResultBlock
from ccrouter.routing import rules
from ccrouter.routing.aliases import Aliases, tier_of
from ccrouter.routing.custom import CustomRouter, RouteContext
from ccrouter.routing.project import NO_PROJECT, ProjectContext
from ccrouter.routing.rules import (
    SESSION_MIN_TOKENS,
    RouteDecision,
    RoutingRule,
    RuleContext,
    RuleServices,
    order_of,
)
from ccrouter.routing.session import SessionUsage
from ccrouter.tokens import TokenCounter

__all__ = ["SESSION_MIN_TOKENS", "RouteDecision", "Router", "builtin_rules"]

log = logging.getLogger("ccrouter.routing")


class Router:
    """Decides where a request goes: asks its rules in order; holds no per-request state.

    ``rules``: what ``register_routing_rules`` gave for these settings (``plugins.Extensions``); by
    default the built-ins, with ``custom`` as the custom hook. ``owner`` names the plugin behind a
    rule in the error a failing rule turns into."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        counter: TokenCounter,
        sessions: SessionUsage,
        custom: CustomRouter | None = None,
        *,
        rules: Sequence[RoutingRule] | None = None,
        owner: Callable[[object], str] | None = None,
    ) -> None:
        self._services = RuleServices(settings, catalog, counter, sessions)
        found = builtin_rules(settings, custom) if rules is None else rules
        # A stable sort: rules of one order keep their registration order.
        self.rules: tuple[RoutingRule, ...] = tuple(sorted(found, key=order_of))
        self._owner = owner

    @property
    def aliases(self) -> Aliases:
        """The picker aliases of this configuration's routes (``GET /v1/models`` lists them)."""
        return self._services.aliases

    async def route(
        self, request: MessagesRequest, *, session_id: str | None, project: ProjectContext = NO_PROJECT
    ) -> RouteDecision:
        decision, _ = await self.decide(request, session_id=session_id, project=project)
        return decision

    def check_route(self, route: str, source: str) -> object:
        """``provider,model`` checked against the configuration (a RoutingError names ``source``)."""
        return self._services.resolve(route, source)

    async def decide(
        self, request: MessagesRequest, *, session_id: str | None, project: ProjectContext = NO_PROJECT
    ) -> tuple[RouteDecision, RuleContext]:
        """The decision, and the context it was made in (what it found out about the request)."""
        context = RuleContext(self._services, request, session_id, project)
        for rule in self.rules:
            try:
                decision = await rule.decide(request, context)
            except CCRouterError:
                raise
            except Exception as exc:  # the boundary: a rule is plugin code (or the user's hook)
                raise self._failed(rule, exc) from exc
            if decision is not None:
                context.subagent()  # the tag goes whichever rule decided
                return decision, context
        names = ", ".join(rule.name for rule in self.rules) or "none"
        raise RoutingError(f"no routing rule decided where the request goes (rules: {names})")

    def _failed(self, rule: RoutingRule, exc: Exception) -> CCRouterError:
        plugin = self._owner(rule) if self._owner is not None else type(rule).__module__
        log.error("routing rule %r of plugin %r failed", rule.name, plugin, exc_info=exc)
        return CCRouterError(
            f"routing rule {rule.name!r} of plugin {plugin!r} failed: {type(exc).__name__}"
            " (see the gateway log)"
        )


def builtin_rules(settings: Settings, custom: CustomRouter | None = None) -> list[RoutingRule]:
    """The built-in scenario rules (the custom hook: ``custom``). Every scenario has its rule: a
    request's profile or ``x-ccrouter-routes`` may give a route the config leaves unset."""
    router = settings.router
    found: list[RoutingRule] = []
    if custom is not None:
        found.append(CustomRule(custom))
    found += [
        ExplicitRule(),
        LongContextRule(router.long_context),
        SubagentRule(),
        SubagentFlagRule(router.subagent),
        BackgroundRule(router.background),
        WebSearchRule(router.web_search),
        ThinkRule(router.think),
        ImageRule(router.image),
        TierRule(),
        DefaultRule(),
    ]
    return found


@dataclass(frozen=True, slots=True)
class CustomRule:
    """``router.custom``: the user's hook answers ``provider,model`` or None."""

    hook: CustomRouter
    name: str = "custom"
    order: int = rules.CUSTOM

    async def decide(self, request: MessagesRequest, context: RuleContext) -> RouteDecision | None:
        route_context = RouteContext(
            settings=context.settings,
            catalog=context.catalog,
            counter=context.counter,
            session_id=context.session_id,
            last_input_tokens=context.last_input_tokens,
        )
        route = await self.hook(request, route_context)
        if route is None:
            return None
        name = getattr(self.hook, "__qualname__", type(self.hook).__name__)
        if not isinstance(route, str):
            raise RoutingError(f"custom router {name} returned {route!r}, expected 'provider,model' or None")
        source = f"custom router {name}"
        return context.decide("custom", route, f"{source} chose {route}", source=source)


@dataclass(frozen=True, slots=True)
class ExplicitRule:
    """The request's model names ``provider,model`` or its picker alias (Claude Code's ``/model``
    choice, or ``ccrouter code``'s tier mapping), or, with ``router.match_model_names``, a model some
    provider lists."""

    name: str = "explicit"
    order: int = rules.EXPLICIT

    async def decide(self, request: MessagesRequest, context: RuleContext) -> RouteDecision | None:
        model = request.model
        if "," in model:
            source = f"request model {model!r}"
            return context.decide("explicit", model, f"the request names {model.strip()}", source=source)
        alias = context.alias(model)
        if alias is not None:
            reason = f"the request names {alias.route} by its alias {model}"
            return context.decide("explicit", alias.route, reason, source=f"request model {model!r}")
        if not context.settings.router.match_model_names:
            return None
        for provider in context.settings.providers:
            if provider.model(model) is not None:
                reason = f"model {model!r} is listed by provider {provider.name!r}"
                return RouteDecision("explicit", provider.name, model, reason)
        return None


@dataclass(frozen=True, slots=True)
class LongContextRule:
    """The request, or the session's last turn, is over ``router.long_context_threshold``."""

    route: str | None
    name: str = "long_context"
    order: int = rules.LONG_CONTEXT

    async def decide(self, request: MessagesRequest, context: RuleContext) -> RouteDecision | None:
        route = context.route("long_context", self.route)
        if route is None:
            return None
        threshold = context.settings.router.long_context_threshold
        tokens = await context.count_tokens()
        if tokens > threshold:
            reason = f"long context: {tokens:,} tokens > {threshold:,}"
            return context.decide("long_context", route, reason)
        last = context.last_input_tokens
        if last is not None and last > threshold and tokens > SESSION_MIN_TOKENS:
            reason = f"long context: the session's last turn used {last:,} input tokens > {threshold:,}"
            return context.decide("long_context", route, reason)
        return None


@dataclass(frozen=True, slots=True)
class SubagentRule:
    """``<CCR-SUBAGENT-MODEL>provider,model</CCR-SUBAGENT-MODEL>`` in any block of the system prompt,
    or in the first user message."""

    name: str = "subagent"
    order: int = rules.SUBAGENT

    async def decide(self, request: MessagesRequest, context: RuleContext) -> RouteDecision | None:
        subagent = context.subagent()
        if subagent is None:
            return None
        return context.decide(
            "subagent", subagent, f"subagent tag asks for {subagent}", source="subagent tag"
        )


@dataclass(frozen=True, slots=True)
class SubagentFlagRule:
    """``router.subagent`` for a request of one of Claude Code's subagents: its billing line says
    ``cc_is_subagent=true`` (the subagent shares the main thread's ``x-claude-code-session-id``)."""

    route: str | None
    name: str = "subagent_route"
    order: int = rules.SUBAGENT_FLAG

    async def decide(self, request: MessagesRequest, context: RuleContext) -> RouteDecision | None:
        route = context.route("subagent", self.route)
        if route is None or not context.flagged_subagent():
            return None
        return context.decide("subagent", route, "subagent: the billing line says cc_is_subagent=true")


@dataclass(frozen=True, slots=True)
class BackgroundRule:
    """A Haiku model: Claude Code's small/fast model for titles and summaries."""

    route: str | None
    name: str = "background"
    order: int = rules.BACKGROUND

    async def decide(self, request: MessagesRequest, context: RuleContext) -> RouteDecision | None:
        route = context.route("background", self.route)
        if route is None:
            return None
        if tier_of(request.model) == "background":
            return context.decide("background", route, f"background: {request.model!r} is the haiku tier")
        if "haiku" not in request.model.lower():
            return None
        return context.decide("background", route, f"background: {request.model!r} is a Haiku model")


@dataclass(frozen=True, slots=True)
class WebSearchRule:
    route: str | None
    name: str = "web_search"
    order: int = rules.WEB_SEARCH

    async def decide(self, request: MessagesRequest, context: RuleContext) -> RouteDecision | None:
        route = context.route("web_search", self.route)
        if route is None:
            return None
        tool = next((t for t in request.tools if _is_web_search(t.name, t.server_type)), None)
        if tool is None:
            return None
        reason = f"web search: the request offers the {tool.server_type or tool.name} tool"
        return context.decide("web_search", route, reason)


@dataclass(frozen=True, slots=True)
class ThinkRule:
    route: str | None
    name: str = "think"
    order: int = rules.THINK

    async def decide(self, request: MessagesRequest, context: RuleContext) -> RouteDecision | None:
        route = context.route("think", self.route)
        if route is None or not request.thinking.on:
            return None
        reason = f"think: the request asks for {request.thinking.type} thinking"
        return context.decide("think", route, reason)


@dataclass(frozen=True, slots=True)
class ImageRule:
    """The last user message holds an image and the default model cannot see it."""

    route: str | None
    name: str = "image"
    order: int = rules.IMAGE

    async def decide(self, request: MessagesRequest, context: RuleContext) -> RouteDecision | None:
        route = context.route("image", self.route)
        if route is None or not _last_user_has_image(request):
            return None
        default = context.route("default", context.settings.router.default) or context.settings.router.default
        provider, model = context.resolve(default, context.source("default"))
        if context.catalog.info(provider, model).vision:
            return None
        reason = f"image: the last user message has an image and {model!r} lacks vision"
        return context.decide("image", route, reason)


@dataclass(frozen=True, slots=True)
class TierRule:
    """A tier id (``claude-ccr-think``, ``claude-ccr-subagent``: ``ccrouter code``'s opus tier and
    subagent model) names a scenario: its route, where no scenario above decided. ``claude-ccr-default``
    is the default route, and the background tier is ``BackgroundRule``'s."""

    name: str = "tier"
    order: int = rules.TIER

    async def decide(self, request: MessagesRequest, context: RuleContext) -> RouteDecision | None:
        scenario = tier_of(request.model)
        if scenario not in ("think", "subagent"):
            return None
        route = context.route(scenario, getattr(context.settings.router, scenario))
        if route is None:
            return None
        return context.decide(scenario, route, f"{scenario}: {request.model!r} is the {scenario} tier")


@dataclass(frozen=True, slots=True)
class DefaultRule:
    name: str = "default"
    order: int = rules.DEFAULT

    async def decide(self, request: MessagesRequest, context: RuleContext) -> RouteDecision | None:
        route = context.route("default", context.settings.router.default) or context.settings.router.default
        return context.decide("default", route, "default route")


def _is_web_search(name: str, server_type: str | None) -> bool:
    # Anthropic's server tool is typed web_search_YYYYMMDD; some clients send a client tool by name.
    return (server_type is not None and server_type.startswith("web_search")) or name == "web_search"


def _last_user_has_image(request: MessagesRequest) -> bool:
    for message in reversed(request.messages):
        if message.role != "user":
            continue
        for block in message.content:
            if isinstance(block, ImageBlock):
                return True
            if isinstance(block, ToolResultBlock) and any(isinstance(p, ImageBlock) for p in block.content):
                return True
        return False
    return False
