"""Read-only views of live state that metrics, health endpoints, the CLI and alerts show.

Resilience implements ``ProviderStatusSource``; budgets implement ``BudgetStatusSource``. Telemetry
reads them at scrape time, so no component pushes into another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = [
    "BudgetStatus",
    "BudgetStatusSource",
    "ProviderState",
    "ProviderStatus",
    "ProviderStatusSource",
    "provider_state",
]

BreakerState = Literal["closed", "open", "half_open"]
# One word for a target's state, as /health/providers and the session API show it.
ProviderState = Literal["ok", "recovering", "rate_limited", "down"]


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    provider: str
    model: str
    breaker: BreakerState
    # Share of the tightest known limit still free, 0..1 (1.0 when no limit is known).
    headroom: float
    # 0..1, higher is better: ``resilience.healthscore.health_score`` (never a routing score).
    health_score: float
    # Seconds until a rate-limit cooldown ends (0 when not limited).
    cooldown_s: float = 0.0
    requests_per_minute: float = 0.0
    tokens_per_minute: float = 0.0
    latency_ewma_s: float | None = None
    error_rate: float = 0.0


def provider_state(status: ProviderStatus) -> ProviderState:
    """Down while the breaker is open, rate limited while cooling down, recovering while half open."""
    if status.breaker == "open":
        return "down"
    if status.cooldown_s > 0:
        return "rate_limited"
    if status.breaker == "half_open":
        return "recovering"
    return "ok"


class ProviderStatusSource(Protocol):
    def provider_statuses(self) -> list[ProviderStatus]: ...


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    name: str
    # "key:<id>", "user:<name>" or "global"
    scope: str
    period: Literal["daily", "weekly", "monthly"]
    limit_usd: float
    used_usd: float
    action: Literal["warn", "downgrade", "block"]
    resets_at: float  # unix time


class BudgetStatusSource(Protocol):
    async def budget_statuses(self) -> list[BudgetStatus]: ...
