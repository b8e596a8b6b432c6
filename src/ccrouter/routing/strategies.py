"""Strategies order the candidates that can serve a request: small policies that combine.

A strategy is a weighted sum of *factors*, each a pure function giving a candidate a 0..1 score
against the other candidates (1 is best). Ties keep the configured order, so ``priority`` is simply
"no factors".

A strategy ranks *within* a tier: the route, then the fallback list, then automatic candidates
(``rank_tiers``); no score moves a fallback ahead of the route. Only live state does: a ready
candidate goes before one held back near its limit, which goes before a blocked one, so a route near
its limit yields to a ready fallback, and ``passed_over`` says why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ccrouter.config import RoutingConfig
from ccrouter.resilience.live import Assessment

__all__ = [
    "FACTORS",
    "Candidate",
    "Scored",
    "Strategy",
    "StrategyFactory",
    "passed_over",
    "rank_tiers",
    "strategy_for",
]


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
    priority: int
    score: float = 0.0
    parts: dict[str, float] = field(default_factory=dict)

    def explain(self) -> str:
        parts = " ".join(f"{k}={v:.2f}" for k, v in self.parts.items())
        notes = f" ({'; '.join(self.assessment.notes)})" if self.assessment.notes else ""
        return f"{self.candidate.route} score={self.score:.3f} {parts}{notes}".rstrip()


Factor = Callable[[Scored, Sequence[Scored]], float]


def headroom(item: Scored, _: Sequence[Scored]) -> float:
    return item.assessment.headroom


def latency(item: Scored, everyone: Sequence[Scored]) -> float:
    """Fastest known latency over this one's; unknown counts as fast, so a new target gets tried."""
    own = item.assessment.latency_s
    known = [s.assessment.latency_s for s in everyone if s.assessment.latency_s]
    if not own or not known:
        return 1.0
    return min(known) / own


def cost(item: Scored, everyone: Sequence[Scored]) -> float:
    """Cheapest known price over this one's; free is 1, unknown is a neutral 0.5."""
    if item.price is None:
        return 0.5
    known = [s.price for s in everyone if s.price is not None]
    cheapest = min(known)
    if item.price <= 0:
        return 1.0
    return cheapest / item.price


def reliability(item: Scored, _: Sequence[Scored]) -> float:
    rate = item.assessment.success_rate
    return 1.0 if rate is None else rate


FACTORS: dict[str, Factor] = {
    "headroom": headroom,
    "latency": latency,
    "cost": cost,
    "reliability": reliability,
}


@dataclass(frozen=True, slots=True)
class Strategy:
    """A weighted sum of named factors."""

    name: str
    weights: Mapping[str, float]

    def rank(self, items: list[Scored]) -> list[Scored]:
        total = sum(self.weights.values()) or 1.0
        for item in items:
            item.parts = {name: FACTORS[name](item, items) for name, w in self.weights.items() if w > 0}
            item.score = sum(self.weights[name] * part for name, part in item.parts.items()) / total
        return sorted(items, key=lambda s: (s.assessment.tier, -round(s.score, 6), s.priority))


# Builds a strategy from the routing settings (``register_strategies``).
StrategyFactory = Callable[[RoutingConfig], Strategy]


def rank_tiers(tiers: Sequence[tuple[Strategy, list[Scored]]]) -> list[Scored]:
    """Each tier ordered by its strategy, the tiers in the given order; then, stably, live state:
    ready, held back, blocked (a ready candidate of a later tier before a held-back one)."""
    ordered = [item for strategy, items in tiers for item in strategy.rank(items)]
    return sorted(ordered, key=lambda s: s.assessment.tier)


def passed_over(route: Scored, ordered: Sequence[Scored]) -> str | None:
    """Why ``route`` does not go first in ``ordered`` (None when it does)."""
    if not ordered or ordered[0] is route:
        return None
    why = "; ".join(route.assessment.notes) or "another candidate comes first"
    return f"route {route.candidate.route} passed over ({why})"


def strategy_for(config: RoutingConfig) -> Strategy:
    weights = config.weights
    if config.strategy == "intelligent":
        return Strategy(
            "intelligent",
            {
                "headroom": weights.headroom,
                "latency": weights.latency,
                "cost": weights.cost,
                "reliability": weights.reliability,
            },
        )
    presets: dict[str, dict[str, float]] = {
        # Cheapest first; among equal prices the more reliable.
        "cost": {"cost": 1.0, "reliability": 0.01},
        "performance": {"latency": 1.0, "reliability": 0.01},
        "availability": {"headroom": 0.5, "reliability": 0.5},
        "priority": {},
    }
    return Strategy(config.strategy, presets[config.strategy])
