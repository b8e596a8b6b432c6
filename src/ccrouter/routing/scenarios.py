"""Scenario routing, compatible with claude-code-router's ``Router`` section.

The first rule that applies decides, in claude-code-router's order (``src/utils/router.ts``):

1. the custom hook (``router.custom``), if it answers;
2. an explicit ``provider,model`` in the request's model (or, with ``router.match_model_names``, a bare
   model name a provider lists);
3. long context: the request's token count, or the session's last reported input, over
   ``router.long_context_threshold`` (counted exactly only where the cache's bounds on the count
   cannot decide a comparison: see ``Router._tokens``);
4. the subagent tag ``<CCR-SUBAGENT-MODEL>provider,model</CCR-SUBAGENT-MODEL>``;
5. background: a Haiku model (Claude Code's small/fast model for titles and summaries);
6. web search: a web search tool is offered;
7. think: thinking is requested;
8. image: the last user message holds an image the default model cannot see;
9. the default route.

The subagent tag is always removed from the request, whichever rule decides.
"""

from __future__ import annotations

from ccrouter.catalog import Catalog
from ccrouter.config import ProviderConfig, Settings
from ccrouter.errors import RoutingError
from ccrouter.messages import ImageBlock, MessagesRequest, ToolResultBlock
from ccrouter.routing.candidates import compared_windows
from ccrouter.routing.custom import CustomRouter, RouteContext
from ccrouter.routing.decision import RouteDecision
from ccrouter.routing.prepare import CleanTexts, extract_subagent_model
from ccrouter.routing.session import SessionUsage
from ccrouter.tokens import TokenCounter

__all__ = ["RouteDecision", "Router"]

# claude-code-router follows the session's last usage only while the request itself still holds
# more than this many tokens: after /compact or /clear the history is small and the usage stale.
SESSION_MIN_TOKENS = 20_000
_MAX_RESOLVED = 1024


class Router:
    """Decides where a request goes; holds no per-request state."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        counter: TokenCounter,
        sessions: SessionUsage,
        custom: CustomRouter | None = None,
    ) -> None:
        self._settings = settings
        self._catalog = catalog
        self._counter = counter
        self._sessions = sessions
        self._custom = custom
        # ``candidates_for`` drops a model when ``tokens >= context_window``: as ``tokens > w - 1``.
        # Texts already found free of the subagent tag.
        self._clean = CleanTexts()
        self._window_limits = tuple(sorted(w - 1 for w in compared_windows(settings, catalog)))
        # Routes already checked against the configuration (``_resolve``).
        self._resolved: dict[str, tuple[ProviderConfig, str]] = {}

    async def route(self, request: MessagesRequest, *, session_id: str | None) -> RouteDecision:
        custom = await self._custom_route(request, session_id)
        subagent = extract_subagent_model(request, self._clean)
        if custom is not None:
            return custom
        explicit = self._explicit(request)
        if explicit is not None:
            return explicit
        tokens: int | None = None
        long_route = self._settings.router.long_context
        if long_route is not None:
            last = self._sessions.last_input(session_id) if session_id else None
            tokens = await self._tokens(request, last)
            long_context = self._long_context(long_route, tokens, last)
            if long_context is not None:
                return long_context
        if subagent is not None:
            reason = f"subagent tag asks for {subagent}"
            return self._decide("subagent", subagent, reason, tokens, source="subagent tag")
        return self._feature_route(request, tokens)

    # ------------------------------------------------------------------ rules

    async def _custom_route(self, request: MessagesRequest, session_id: str | None) -> RouteDecision | None:
        if self._custom is None:
            return None
        context = RouteContext(
            settings=self._settings,
            catalog=self._catalog,
            counter=self._counter,
            session_id=session_id,
            last_input_tokens=self._sessions.last_input(session_id) if session_id else None,
        )
        route = await self._custom(request, context)
        if route is None:
            return None
        name = getattr(self._custom, "__qualname__", type(self._custom).__name__)
        if not isinstance(route, str):
            raise RoutingError(f"custom router {name} returned {route!r}, expected 'provider,model' or None")
        source = f"custom router {name}"
        return self._decide("custom", route, f"{source} chose {route}", None, source=source)

    def _explicit(self, request: MessagesRequest) -> RouteDecision | None:
        model = request.model
        if "," in model:
            source = f"request model {model!r}"
            return self._decide("explicit", model, f"the request names {model.strip()}", None, source=source)
        if not self._settings.router.match_model_names:
            return None
        for provider in self._settings.providers:
            if provider.model(model) is not None:
                reason = f"model {model!r} is listed by provider {provider.name!r}"
                return RouteDecision("explicit", provider.name, model, reason)
        return None

    async def _tokens(self, request: MessagesRequest, last: int | None) -> int:
        """The request's token count, exact only where it matters: when the bounds from the counter's
        cache straddle a threshold the count is compared with (the long-context threshold, the
        session rule's minimum, an automatic candidate's context window), or when long context
        applies (its reason shows the count). Otherwise a guess within the bounds: it compares
        with each threshold as the exact count does, and no new text is tokenized."""
        estimate = self._counter.estimate_request(request)
        threshold = self._settings.router.long_context_threshold
        if (
            estimate.above(threshold) is False
            and (last is None or last <= threshold or estimate.decides(SESSION_MIN_TOKENS))
            and estimate.decides(*self._window_limits)
        ):
            return estimate.guess
        return await self._counter.resolve_async(estimate)

    def _long_context(self, route: str, tokens: int, last: int | None) -> RouteDecision | None:
        threshold = self._settings.router.long_context_threshold
        if tokens > threshold:
            reason = f"long context: {tokens:,} tokens > {threshold:,}"
            return self._decide("long_context", route, reason, tokens)
        if last is not None and last > threshold and tokens > SESSION_MIN_TOKENS:
            reason = f"long context: the session's last turn used {last:,} input tokens > {threshold:,}"
            return self._decide("long_context", route, reason, tokens)
        return None

    def _feature_route(self, request: MessagesRequest, tokens: int | None) -> RouteDecision:
        config = self._settings.router
        if config.background and "haiku" in request.model.lower():
            reason = f"background: {request.model!r} is a Haiku model"
            return self._decide("background", config.background, reason, tokens)
        if config.web_search:
            tool = next((t for t in request.tools if _is_web_search(t.name, t.server_type)), None)
            if tool is not None:
                reason = f"web search: the request offers the {tool.server_type or tool.name} tool"
                return self._decide("web_search", config.web_search, reason, tokens)
        if config.think and request.thinking.on:
            reason = f"think: the request asks for {request.thinking.type} thinking"
            return self._decide("think", config.think, reason, tokens)
        if config.image and _last_user_has_image(request):
            provider, model = self._resolve(config.default, "router.default")
            if not self._catalog.info(provider, model).vision:
                reason = f"image: the last user message has an image and {model!r} lacks vision"
                return self._decide("image", config.image, reason, tokens)
        return self._decide("default", config.default, "default route", tokens)

    # ------------------------------------------------------------------ helpers

    def _decide(
        self, scenario: str, route: str, reason: str, tokens: int | None, *, source: str | None = None
    ) -> RouteDecision:
        provider, model = self._resolve(route, source or f"router.{scenario}")
        return RouteDecision(scenario, provider.name, model, reason, tokens)

    def _resolve(self, route: str, source: str) -> tuple[ProviderConfig, str]:
        """``provider,model`` checked against the configuration (RoutingError names what exists).
        The settings are frozen: a route that resolved once resolves the same way."""
        found = self._resolved.get(route)
        if found is not None:
            return found
        found = self._check(route, source)
        if len(self._resolved) >= _MAX_RESOLVED:  # clients may write any provider,model: stay bounded
            self._resolved.clear()
        self._resolved[route] = found
        return found

    def _check(self, route: str, source: str) -> tuple[ProviderConfig, str]:
        provider_name, sep, model = (part.strip() for part in route.partition(","))
        if not sep or not provider_name or not model:
            raise RoutingError(f"{source}: expected 'provider,model', got {route!r}")
        provider = self._settings.provider(provider_name)
        if provider is None:
            names = ", ".join(p.name for p in self._settings.providers)
            raise RoutingError(f"{source}: unknown provider {provider_name!r} (configured: {names})")
        # A provider that lists no models accepts any name (as the config validation does).
        if provider.models and provider.model(model) is None:
            listed = ", ".join(spec.name for spec in provider.models)
            raise RoutingError(
                f"{source}: provider {provider_name!r} has no model {model!r} (it lists: {listed})"
            )
        return provider, model


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
