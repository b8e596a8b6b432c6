"""Model aliases for Claude Code's ``/model`` picker: ``claude-ccr-<provider>-<model>``.

Claude Code's gateway model discovery (``GET /v1/models``) shows only ids that begin with ``claude``
or ``anthropic``, so a ``provider,model`` id never reaches its picker. Each configured route gets an
alias instead: ``alias_for("deepseek", "deepseek-chat") == "claude-ccr-deepseek-deepseek-chat"``, a
character outside ``[A-Za-z0-9.-]`` in either part becoming ``-`` (``openrouter,qwen/qwen3-coder`` is
``claude-ccr-openrouter-qwen-qwen3-coder``). ``Aliases`` maps them back; the explicit-route rule
(``routing.scenarios.ExplicitRule``) routes a request naming one exactly as it routes
``provider,model``.

The mangling is not reversible, so the table is built from the configuration: every model a provider
lists, then every route the router names (a provider that lists no models accepts any name; its
routes are the only names known for it). Two routes with the same alias (``a-b,c`` and ``a,b-c``; or
``p,x/y`` and ``p,x_y``) keep the first configured: providers in config order, their models in order,
then the router's routes. The table is built with the router, from the settings, so a live reload
gets a new one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from ccrouter.config import Settings

__all__ = [
    "ALIAS_PREFIX",
    "TIERS",
    "Aliases",
    "ModelRoute",
    "alias_for",
    "configured_routes",
    "tier_model",
    "tier_of",
]

ALIAS_PREFIX = "claude-ccr-"
_UNSAFE = re.compile(r"[^A-Za-z0-9.\-]")
# The router's scenario routes, in the order the picker lists the ones no provider lists.
_SCENARIOS = ("default", "background", "think", "long_context", "web_search", "image", "subagent")


# Claude Code's tiers under ``ccrouter code``: ``claude-ccr-<scenario>`` names no model but a scenario
# (sonnet: default, opus: think, haiku: background, subagents: subagent). Unlike a route's alias it
# does not pin the route: the scenario rules still decide (long context, web search, images...), and
# the tier's own scenario route is taken where none of them does (``routing.scenarios.TierRule``).
# ``alias_for`` always puts a '-' and a model after the provider, so no alias equals a tier id.
TIERS = ("default", "think", "background", "subagent")
_TIER_IDS = {f"{ALIAS_PREFIX}{scenario}": scenario for scenario in TIERS}


def tier_model(scenario: str) -> str:
    """The model id of a tier: ``claude-ccr-think``."""
    if scenario not in TIERS:
        raise ValueError(f"{scenario!r} is not a tier (one of {', '.join(TIERS)})")
    return f"{ALIAS_PREFIX}{scenario}"


def tier_of(model: str) -> str | None:
    """The scenario a tier id names (``claude-ccr-think`` -> ``think``); None for any other name."""
    return _TIER_IDS.get(model)


def alias_for(provider: str, model: str) -> str:
    """The picker id of ``provider,model``."""
    return f"{ALIAS_PREFIX}{_UNSAFE.sub('-', provider)}-{_UNSAFE.sub('-', model)}"


@dataclass(frozen=True, slots=True)
class ModelRoute:
    """One configured ``provider,model`` and its alias."""

    provider: str
    model: str
    alias: str

    @property
    def route(self) -> str:
        return f"{self.provider},{self.model}"


def configured_routes(settings: Settings) -> Iterator[tuple[str, str]]:
    """Every ``(provider, model)`` the configuration names, first occurrence only: the providers'
    listed models in config order, then the scenario routes, then the fallback routes."""
    seen: set[tuple[str, str]] = set()
    pairs = [(p.name, spec.name) for p in settings.providers for spec in p.models]
    routes = [getattr(settings.router, scenario) for scenario in _SCENARIOS]
    routes += [route for listed in settings.router.fallback.values() for route in listed]
    for route in routes:
        if isinstance(route, str) and "," in route:
            provider, _, model = (part.strip() for part in route.partition(","))
            pairs.append((provider, model))
    for pair in pairs:
        if pair not in seen:
            seen.add(pair)
            yield pair


class Aliases:
    """The aliases of one configuration, in config order, and the reverse lookup."""

    __slots__ = ("_by_alias", "routes")

    def __init__(self, routes: tuple[ModelRoute, ...]) -> None:
        by_alias: dict[str, ModelRoute] = {}
        kept: list[ModelRoute] = []
        for route in routes:
            if route.alias not in by_alias:  # ambiguous: the first configured wins
                by_alias[route.alias] = route
                kept.append(route)
        self._by_alias = by_alias
        self.routes: tuple[ModelRoute, ...] = tuple(kept)

    @classmethod
    def from_settings(cls, settings: Settings) -> Aliases:
        return cls(tuple(ModelRoute(p, m, alias_for(p, m)) for p, m in configured_routes(settings)))

    def resolve(self, name: str) -> ModelRoute | None:
        """The route an alias names; None for any other model name (or an alias not configured)."""
        if not name.startswith(ALIAS_PREFIX):
            return None
        return self._by_alias.get(name)

    def __len__(self) -> int:
        return len(self.routes)
