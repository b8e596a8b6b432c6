"""Scenario rules: small objects asked in order until one decides where a request goes.

A rule is anything with a ``name`` and an async ``decide(request, context)`` that returns a
``RouteDecision`` or None (let the next rule decide). Rules come from ``register_routing_rules``
(the built-ins from ``ccrouter.builtins.routing``) and are asked by ascending ``order``; rules of the
same order keep their registration order. The built-ins use the slots below, in claude-code-router's
order (``src/utils/router.ts``); a rule without an ``order`` attribute is asked at ``PLUGIN``: after
the custom hook, an explicit ``provider,model``, long context and the subagent tag, before the
feature scenarios (background, web search, think, image) and the default route.

``RuleContext`` is what a rule may consult besides the request: the settings, the catalog, the token
counter, the session's last reported input, the request's token count (counted once, exactly only
where it matters), the request's project (``routing.project``: its profile's and its header's route
overrides, which ``route`` applies), whether Claude Code's billing line marks it as a subagent's,
and ``decide``, which checks a ``provider,model`` against the configuration.
"""

from __future__ import annotations

from typing import Final, Protocol

from ccrouter.catalog import Catalog
from ccrouter.codecs.billing import is_subagent
from ccrouter.config import ProviderConfig, Settings
from ccrouter.errors import RoutingError
from ccrouter.messages import MessagesRequest
from ccrouter.routing.aliases import Aliases, ModelRoute
from ccrouter.routing.candidates import compared_windows
from ccrouter.routing.decision import RouteDecision
from ccrouter.routing.prepare import CleanTexts, extract_subagent_model
from ccrouter.routing.project import NO_PROJECT, ProjectContext
from ccrouter.routing.session import SessionUsage
from ccrouter.tokens import TokenCounter

__all__ = [
    "BACKGROUND",
    "CUSTOM",
    "DEFAULT",
    "EXPLICIT",
    "IMAGE",
    "LONG_CONTEXT",
    "PLUGIN",
    "SESSION_MIN_TOKENS",
    "SUBAGENT",
    "SUBAGENT_FLAG",
    "THINK",
    "TIER",
    "WEB_SEARCH",
    "RouteDecision",
    "RoutingRule",
    "RuleContext",
    "RuleServices",
    "order_of",
]

# Where each built-in rule is asked (lower first), and where a rule without ``order`` goes.
CUSTOM: Final = 100
EXPLICIT: Final = 200
LONG_CONTEXT: Final = 300
SUBAGENT: Final = 400
# ``router.subagent`` for a request Claude Code's billing line marks as a subagent's.
SUBAGENT_FLAG: Final = 410
PLUGIN: Final = 450
BACKGROUND: Final = 500
WEB_SEARCH: Final = 600
THINK: Final = 700
IMAGE: Final = 800
# A tier id (``claude-ccr-think``, ``ccrouter code``'s opus tier): its scenario's route, when no
# scenario above decided.
TIER: Final = 900
DEFAULT: Final = 1000

# claude-code-router follows the session's last usage only while the request itself still holds
# more than this many tokens: after /compact or /clear the history is small and the usage stale.
SESSION_MIN_TOKENS = 20_000
_MAX_RESOLVED = 1024


class RoutingRule(Protocol):
    """One scenario. May also have ``order: int`` (default ``PLUGIN``)."""

    @property
    def name(self) -> str: ...

    async def decide(self, request: MessagesRequest, context: RuleContext) -> RouteDecision | None:
        """A decision, or None to let the next rule decide. Raise ``RoutingError`` to refuse."""
        ...


def order_of(rule: RoutingRule) -> int:
    order = getattr(rule, "order", PLUGIN)
    return order if isinstance(order, int) else PLUGIN


class RuleServices:
    """What every rule of one configuration shares: settings, catalog, counter, session usage, and the
    routes already checked against the configuration."""

    def __init__(
        self, settings: Settings, catalog: Catalog, counter: TokenCounter, sessions: SessionUsage
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.counter = counter
        self.sessions = sessions
        # The picker aliases (``claude-ccr-<provider>-<model>``) of this configuration's routes.
        self.aliases = Aliases.from_settings(settings)
        # Texts already found free of the subagent tag.
        self.clean = CleanTexts()
        # ``candidates_for`` drops a model when ``tokens >= context_window``: as ``tokens > w - 1``.
        self._window_limits = tuple(sorted(w - 1 for w in compared_windows(settings, catalog)))
        self._resolved: dict[str, tuple[ProviderConfig, str]] = {}

    async def count(self, request: MessagesRequest, last: int | None) -> int:
        """The request's token count, exact only where it matters: when the bounds from the counter's
        cache straddle a threshold the count is compared with (the long-context threshold, the
        session rule's minimum, an automatic candidate's context window), or when long context
        applies (its reason shows the count). Otherwise a guess within the bounds: it compares
        with each threshold as the exact count does, and no new text is tokenized."""
        estimate = self.counter.estimate_request(request)
        threshold = self.settings.router.long_context_threshold
        if (
            estimate.above(threshold) is False
            and (last is None or last <= threshold or estimate.decides(SESSION_MIN_TOKENS))
            and estimate.decides(*self._window_limits)
        ):
            return estimate.guess
        return await self.counter.resolve_async(estimate)

    def resolve(self, route: str, source: str) -> tuple[ProviderConfig, str]:
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
        provider = self.settings.provider(provider_name)
        if provider is None:
            names = ", ".join(p.name for p in self.settings.providers)
            raise RoutingError(f"{source}: unknown provider {provider_name!r} (configured: {names})")
        # A provider that lists no models accepts any name (as the config validation does).
        if provider.models and provider.model(model) is None:
            listed = ", ".join(spec.name for spec in provider.models)
            raise RoutingError(
                f"{source}: provider {provider_name!r} has no model {model!r} (it lists: {listed})"
            )
        return provider, model


_UNSEEN: Final = object()


class RuleContext:
    """One request's view for the rules; what it works out (the subagent tag, the token count, the
    session's last input) is worked out once, by whichever rule asks first."""

    __slots__ = (
        "_flagged",
        "_last",
        "_request",
        "_services",
        "_subagent",
        "catalog",
        "counter",
        "project",
        "session_id",
        "settings",
        "tokens",
    )

    def __init__(
        self,
        services: RuleServices,
        request: MessagesRequest,
        session_id: str | None,
        project: ProjectContext = NO_PROJECT,
    ) -> None:
        self._services = services
        self._request = request
        self._subagent: object = _UNSEEN
        self._flagged: bool | None = None
        self._last: object = _UNSEEN
        self.project = project
        self.settings: Settings = services.settings
        self.catalog: Catalog = services.catalog
        self.counter: TokenCounter = services.counter
        self.session_id = session_id
        # The request's token count once a rule counted it (``count_tokens``), else None.
        self.tokens: int | None = None

    @property
    def last_input_tokens(self) -> int | None:
        """Input tokens (input + cache read + cache creation) the session's previous turn reported."""
        if self._last is _UNSEEN:
            self._last = self._services.sessions.last_input(self.session_id) if self.session_id else None
        last = self._last
        return last if isinstance(last, int) else None

    def subagent(self) -> str | None:
        """The route the ``<CCR-SUBAGENT-MODEL>`` tag asks for (not validated), the tag removed from
        the request. The router calls it after every decision: the tag never reaches a provider."""
        if self._subagent is _UNSEEN:
            self._subagent = extract_subagent_model(self._request, self._services.clean)
        found = self._subagent
        return found if isinstance(found, str) else None

    def flagged_subagent(self) -> bool:
        """Whether Claude Code's billing line says a subagent sent the request (``cc_is_subagent``)."""
        if self._flagged is None:
            self._flagged = is_subagent(self._request)
        return self._flagged

    def is_subagent(self) -> bool:
        """A subagent's request: flagged by the billing line, or carrying the subagent tag."""
        return self.subagent() is not None or self.flagged_subagent()

    def route(self, scenario: str, configured: str | None) -> str | None:
        """The route for ``scenario``: the request's project override (its profile's, then its
        ``x-ccrouter-routes``), else ``configured`` (the config's ``router.<scenario>``)."""
        return self.project.routes.get(scenario, configured)

    def source(self, scenario: str) -> str:
        """Where ``route(scenario)`` comes from, for errors and reasons."""
        return self.project.sources.get(scenario, f"router.{scenario}")

    async def count_tokens(self) -> int:
        """The request's token count (without the subagent tag), as ``RuleServices.count`` gives it."""
        if self.tokens is None:
            self.subagent()
            self.tokens = await self._services.count(self._request, self.last_input_tokens)
        return self.tokens

    def resolve(self, route: str, source: str) -> tuple[ProviderConfig, str]:
        return self._services.resolve(route, source)

    def alias(self, model: str) -> ModelRoute | None:
        """The configured route whose picker alias is ``model`` (``routing.aliases``), else None."""
        return self._services.aliases.resolve(model)

    def decide(self, scenario: str, route: str, reason: str, *, source: str | None = None) -> RouteDecision:
        """A decision for ``route`` (``provider,model``, checked: a RoutingError names ``source``,
        default where ``route(scenario)`` comes from), carrying the token count if one was made. A
        route the project overrides says so in the reason."""
        provider, model = self._services.resolve(route, source or self.source(scenario))
        origin = self.project.sources.get(scenario)
        if origin is not None and source is None and self.project.routes.get(scenario) == route:
            reason = f"{reason} ({origin})"
        return RouteDecision(scenario, provider.name, model, reason, self.tokens)
