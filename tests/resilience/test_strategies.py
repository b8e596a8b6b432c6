from __future__ import annotations

import pytest

from ccrouter.config import RoutingConfig
from ccrouter.errors import CCRouterError, ConfigError
from ccrouter.plugins import Registry, load_plugins
from ccrouter.resilience.live import Assessment
from ccrouter.routing.strategies import (
    COST,
    HEADROOM,
    LATENCY,
    Candidate,
    RankingPolicy,
    Scored,
    Strategy,
    passed_over,
    rank_tiers,
    strategy_named,
)

# The built-in strategies as the gateway finds them: registered by ccrouter.builtins.routing.
STRATEGIES = Registry.build(load_plugins(entry_points=False)).strategies


def strategy_for(config: RoutingConfig) -> RankingPolicy:
    return strategy_named(STRATEGIES, config)


def _item(
    name: str,
    priority: int,
    *,
    tier: int = 0,
    headroom: float = 1.0,
    latency: float | None = None,
    price: float | None = None,
    success: float | None = None,
) -> Scored:
    assessment = Assessment(
        name, "m", tier, "k0", headroom, "closed", latency_s=latency, success_rate=success
    )
    return Scored(Candidate(name, "m", "route"), assessment, price, priority)


def _order(strategy: str, items: list[Scored], **weights: float) -> list[str]:
    config = RoutingConfig.model_validate({"strategy": strategy, "weights": weights or {}})
    return [s.candidate.provider for s in strategy_for(config).rank(items)]


def test_priority_keeps_config_order_within_tiers() -> None:
    items = [_item("a", 0, tier=1), _item("b", 1, price=0.1), _item("c", 2, tier=2), _item("d", 3)]
    assert _order("priority", items) == ["b", "d", "a", "c"]


def test_cost_prefers_the_cheapest_known_price() -> None:
    items = [_item("a", 0, price=15.0), _item("b", 1, price=0.5), _item("c", 2, price=3.0), _item("d", 3)]
    # Unknown price (d) counts as twice the cheapest: before c (6x) and a (30x).
    assert _order("cost", items) == ["b", "d", "c", "a"]


def test_performance_prefers_low_latency_and_tries_unknown() -> None:
    items = [_item("a", 0, latency=4.0), _item("b", 1, latency=1.0), _item("c", 2)]
    assert _order("performance", items) == ["b", "c", "a"]


def test_intelligent_weighs_parts_and_explains() -> None:
    items = [
        _item("a", 0, headroom=0.3, latency=1.0, price=3.0, success=1.0),
        _item("b", 1, headroom=1.0, latency=2.0, price=3.0, success=1.0),
        _item("c", 2, headroom=1.0, latency=1.0, price=3.0, success=0.2),
    ]
    ranked = strategy_for(RoutingConfig()).rank(items)
    assert [s.candidate.provider for s in ranked] == ["c", "b", "a"]
    by_name = {s.candidate.provider: s for s in ranked}
    assert by_name["a"].parts == {"headroom": 0.3, "latency": 1.0, "cost": 1.0, "reliability": 1.0}
    # 0.4 * 0.3 + 0.3 * 1 + 0.2 * 1 + 0.1 * 1
    assert round(by_name["a"].score, 6) == 0.72
    assert round(by_name["c"].score, 6) == 0.92
    assert by_name["b"].explain() == "b,m score=0.850 headroom=1.00 latency=0.50 cost=1.00 reliability=1.00"
    # Weights are configurable: all on reliability puts a first (ties keep config order).
    assert _order("intelligent", items, headroom=0, latency=0, cost=0, reliability=1) == ["a", "b", "c"]


def test_availability_prefers_headroom_and_reliability() -> None:
    items = [_item("a", 0, headroom=0.5), _item("b", 1, success=0.4), _item("c", 2)]
    assert _order("availability", items) == ["c", "a", "b"]


def test_strategies_rank_within_tiers_and_live_state_across_them() -> None:
    intelligent = strategy_for(RoutingConfig())
    route = _item("a", 0, latency=2.0, price=15.0)
    cheap = _item("b", 1, latency=0.5, price=0.1)
    unpriced = _item("c", 2)
    ordered = rank_tiers([(intelligent, [route]), (intelligent, [cheap, unpriced])])
    # Cheaper, faster and unpriced fallbacks rank among themselves, never ahead of the ready route.
    assert [s.candidate.provider for s in ordered] == ["a", "b", "c"]
    assert passed_over(route, ordered) is None
    held = _item("a", 0, tier=1)
    held.assessment.notes.append("at 85% of its limit")
    ordered = rank_tiers([(intelligent, [held]), (intelligent, [_item("b", 1)])])
    assert [s.candidate.provider for s in ordered] == ["b", "a"]
    assert passed_over(held, ordered) == "route a,m passed over (at 85% of its limit)"


def test_factors_compose_into_a_strategy() -> None:
    items = [_item("a", 0, latency=1.0, price=4.0), _item("b", 1, latency=2.0, price=1.0)]
    # Twice as much weight on cost as on latency; a zero weight drops its factor from the parts.
    mine = Strategy("mine", COST * 2 + LATENCY + HEADROOM * 0)
    ranked = mine.rank(items)
    assert [s.candidate.provider for s in ranked] == ["b", "a"]
    assert ranked[0].explain() == "b,m score=0.833 cost=1.00 latency=0.50"
    assert ranked[1].explain() == "a,m score=0.500 cost=0.25 latency=1.00"
    # Scaling a blend changes no order: the sum is divided by the total weight.
    assert [s.candidate.provider for s in Strategy("x", (COST * 2 + LATENCY) * 10).rank(items)] == ["b", "a"]


def test_an_unknown_strategy_names_the_registered_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        strategy_named(STRATEGIES, RoutingConfig(strategy="fastest"))
    assert caught.value.message == (
        "routing.strategy: unknown strategy 'fastest' "
        "(registered: availability, cost, intelligent, performance, priority)"
    )


def test_a_plugin_strategy_that_fails_is_a_clean_error() -> None:
    class Drops:
        name = "drops"

        def rank(self, items: list[Scored]) -> list[Scored]:
            return items[:1]

    class Raises(Drops):
        def rank(self, items: list[Scored]) -> list[Scored]:
            raise ValueError("no")

    config = RoutingConfig(strategy="drops")
    items = [_item("a", 0), _item("b", 1)]
    policy = strategy_named({"drops": lambda _: Drops()}, config)
    with pytest.raises(
        CCRouterError, match=r"^ranking strategy 'drops' of plugin '[\w.]+' ranked 2 candidates"
    ):
        policy.rank(items)
    policy = strategy_named({"drops": lambda _: Raises()}, config)
    with pytest.raises(CCRouterError, match=r"'drops' of plugin '[\w.]+' raised ValueError") as caught:
        policy.rank(items)
    assert (caught.value.status, caught.value.error_type) == (500, "api_error")

    # A factory that fails is a configuration error, at start.
    def unbuildable(config: RoutingConfig) -> Drops:
        raise ZeroDivisionError

    with pytest.raises(ConfigError, match=r"building strategy 'drops' failed: ZeroDivisionError"):
        strategy_named({"drops": unbuildable}, config)
