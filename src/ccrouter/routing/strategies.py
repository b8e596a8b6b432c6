"""Strategies order the candidates that can serve a request: small policies that combine.

A ranking policy is anything with a ``name`` and ``rank(items)``. The built-in ones are weighted sums
of *factors*, each a pure function giving a candidate a 0..1 score against the other candidates
(1 is best). Factors combine as tenacity's stop conditions do::

    HEADROOM * 0.5 + RELIABILITY * 0.5            # the "availability" strategy
    Strategy("cheap-and-fast", COST * 2 + LATENCY)

Ties keep the configured order, so ``priority`` is simply "no factors". Strategies are registered by
name through ``register_strategies`` (``ccrouter.builtins.routing`` registers the built-ins below) as
a factory that builds the policy from the routing settings; ``routing.strategy`` picks one.

A strategy ranks *within* a tier: the route, then the fallback list, then automatic candidates
(``rank_tiers``); no score moves a fallback ahead of the route. Only live state does: a ready
candidate goes before one held back near its limit, which goes before a blocked one, so a route near
its limit yields to a ready fallback, and ``passed_over`` says why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from ccrouter.config import RoutingConfig
from ccrouter.errors import CCRouterError, ConfigError
from ccrouter.resilience.live import Assessment

__all__ = [
    "BUILTIN_STRATEGIES",
    "COST",
    "HEADROOM",
    "LATENCY",
    "PRIORITY",
    "RELIABILITY",
    "Blend",
    "Candidate",
    "Factor",
    "Guarded",
    "RankingPolicy",
    "Scored",
    "Strategy",
    "StrategyFactory",
    "passed_over",
    "rank_tiers",
    "strategy_named",
]

log = logging.getLogger("ccrouter.routing")


@dataclass(frozen=True, slots=True)
class Candidate:
    provider: str
    model: str
    # Why it is a candidate: route, fallback, auto, long_context, sticky...
    origin: str

    @property
    def route(self) -> str:
        return f"{self.provider},{self.model}"


@dataclass(slots=True)
class Scored:
    candidate: Candidate
    assessment: Assessment
    # Blended USD per million tokens (None: price unknown).
    price: float | None
    # The candidate's place in the configured order (0 first).
    priority: int
    score: float = 0.0
    parts: dict[str, float] = field(default_factory=dict)

    def explain(self) -> str:
        parts = " ".join(f"{k}={v:.2f}" for k, v in self.parts.items())
        notes = f" ({'; '.join(self.assessment.notes)})" if self.assessment.notes else ""
        return f"{self.candidate.route} score={self.score:.3f} {parts}{notes}".rstrip()


class RankingPolicy(Protocol):
    """Orders one tier's candidates (best first); may set each one's ``score`` and ``parts``, which
    the route reason shows. Must be fast and pure: it runs on every request."""

    @property
    def name(self) -> str: ...

    def rank(self, items: list[Scored]) -> list[Scored]: ...


# Builds a ranking policy from the routing settings (``register_strategies``).
StrategyFactory = Callable[[RoutingConfig], RankingPolicy]


@dataclass(frozen=True, slots=True)
class Factor:
    """A named score in 0..1 (1 best) of one candidate among the others."""

    name: str
    score: Callable[[Scored, Sequence[Scored]], float]

    def __mul__(self, weight: float) -> Blend:
        return Blend(((self, float(weight)),))

    __rmul__ = __mul__

    def __add__(self, other: Factor | Blend) -> Blend:
        return self * 1.0 + other


@dataclass(frozen=True, slots=True)
class Blend:
    """A weighted sum of factors, divided by the total weight; a zero weight drops its factor."""

    terms: tuple[tuple[Factor, float], ...] = ()

    def __add__(self, other: Factor | Blend) -> Blend:
        more = other.terms if isinstance(other, Blend) else ((other, 1.0),)
        return Blend(self.terms + more)

    def __mul__(self, weight: float) -> Blend:
        return Blend(tuple((factor, w * weight) for factor, w in self.terms))

    def apply(self, item: Scored, everyone: Sequence[Scored]) -> None:
        """Set ``item.parts`` (each factor with a positive weight) and ``item.score``."""
        total = sum(w for _, w in self.terms) or 1.0
        parts: dict[str, float] = {}
        score = 0.0
        for factor, weight in self.terms:
            if weight > 0:
                part = factor.score(item, everyone)
                parts[factor.name] = part
                score += weight * part
        item.parts = parts
        item.score = score / total


@dataclass(frozen=True, slots=True)
class Strategy:
    """A ranking policy by a blend of factors; ties keep the configured order."""

    name: str
    blend: Blend = field(default_factory=Blend)

    def rank(self, items: list[Scored]) -> list[Scored]:
        for item in items:
            self.blend.apply(item, items)
        return sorted(items, key=lambda s: (s.assessment.tier, -round(s.score, 6), s.priority))


def _headroom(item: Scored, _: Sequence[Scored]) -> float:
    return item.assessment.headroom


def _latency(item: Scored, everyone: Sequence[Scored]) -> float:
    """Fastest known latency over this one's; unknown counts as fast, so a new target gets tried."""
    own = item.assessment.latency_s
    known = [s.assessment.latency_s for s in everyone if s.assessment.latency_s]
    if not own or not known:
        return 1.0
    return min(known) / own


def _cost(item: Scored, everyone: Sequence[Scored]) -> float:
    """Cheapest known price over this one's; free is 1, unknown is a neutral 0.5."""
    if item.price is None:
        return 0.5
    if item.price <= 0:
        return 1.0
    return min(s.price for s in everyone if s.price is not None) / item.price


def _reliability(item: Scored, _: Sequence[Scored]) -> float:
    rate = item.assessment.success_rate
    return 1.0 if rate is None else rate


HEADROOM = Factor("headroom", _headroom)
LATENCY = Factor("latency", _latency)
COST = Factor("cost", _cost)
RELIABILITY = Factor("reliability", _reliability)
# The configured order: also what a route a policy pinned (custom, subagent, downgrade) is ranked by.
PRIORITY = Strategy("priority")


def _intelligent(config: RoutingConfig) -> RankingPolicy:
    w = config.weights
    blend = HEADROOM * w.headroom + LATENCY * w.latency + COST * w.cost + RELIABILITY * w.reliability
    return Strategy("intelligent", blend)


BUILTIN_STRATEGIES: Mapping[str, StrategyFactory] = MappingProxyType(
    {
        "intelligent": _intelligent,
        # Cheapest first; among equal prices the more reliable.
        "cost": lambda _: Strategy("cost", COST + RELIABILITY * 0.01),
        "performance": lambda _: Strategy("performance", LATENCY + RELIABILITY * 0.01),
        "availability": lambda _: Strategy("availability", HEADROOM * 0.5 + RELIABILITY * 0.5),
        "priority": lambda _: PRIORITY,
    }
)


def strategy_named(strategies: Mapping[str, StrategyFactory], config: RoutingConfig) -> RankingPolicy:
    """The policy ``routing.strategy`` names, built from ``config``; a ConfigError names the
    registered strategies when it is not one of them. A plugin's policy comes guarded: if it fails
    while ranking, that request gets a clean error naming it (``Guarded``)."""
    factory = strategies.get(config.strategy)
    if factory is None:
        known = ", ".join(sorted(strategies)) or "none"
        raise ConfigError(f"routing.strategy: unknown strategy {config.strategy!r} (registered: {known})")
    try:
        policy = factory(config)
    except Exception as exc:  # the boundary: a plugin's factory
        raise ConfigError(f"routing.strategy: building strategy {config.strategy!r} failed: {exc!r}") from exc
    if factory is BUILTIN_STRATEGIES.get(config.strategy):
        return policy
    return Guarded(policy, getattr(factory, "__module__", None) or "?")


@dataclass(frozen=True, slots=True)
class Guarded:
    """A plugin's policy: an exception, or a ranking that loses or adds candidates, becomes a clean
    error for the request (500 ``api_error`` naming the strategy and its plugin), logged."""

    policy: RankingPolicy
    plugin: str

    @property
    def name(self) -> str:
        return self.policy.name

    def rank(self, items: list[Scored]) -> list[Scored]:
        try:
            ranked = self.policy.rank(items)
        except Exception as exc:  # the boundary: a plugin's own code
            raise self._failed(f"raised {type(exc).__name__}", exc) from exc
        if len(ranked) != len(items) or {id(s) for s in ranked} != {id(s) for s in items}:
            raise self._failed(f"ranked {len(items)} candidates into {len(ranked)} others", None)
        return ranked

    def _failed(self, what: str, exc: Exception | None) -> CCRouterError:
        log.error("ranking strategy %r of plugin %r %s", self.name, self.plugin, what, exc_info=exc)
        return CCRouterError(
            f"ranking strategy {self.name!r} of plugin {self.plugin!r} {what} (see the gateway log)"
        )


def rank_tiers(tiers: Sequence[tuple[RankingPolicy, list[Scored]]]) -> list[Scored]:
    """Each tier ordered by its policy, the tiers in the given order; then, stably, live state:
    ready, held back, blocked (a ready candidate of a later tier before a held-back one)."""
    ordered = [item for policy, items in tiers for item in policy.rank(items)]
    return sorted(ordered, key=lambda s: s.assessment.tier)


def passed_over(route: Scored, ordered: Sequence[Scored]) -> str | None:
    """Why ``route`` does not go first in ``ordered`` (None when it does)."""
    if not ordered or ordered[0] is route:
        return None
    why = "; ".join(route.assessment.notes) or "another candidate comes first"
    return f"route {route.candidate.route} passed over ({why})"
