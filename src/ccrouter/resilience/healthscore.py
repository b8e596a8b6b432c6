"""How healthy a target is, 0 (down) to 1 (healthy): the one measure that ``/health/providers``,
``ccr_provider_health_score`` and the ProviderUnhealthy alert show.

Health is what traffic says about the target, never how a strategy ranked it (a priority or cost
ranking would call a perfectly healthy target 0). It multiplies four signals:

- outcomes: the share of recent calls that succeeded (rate limits and client errors excluded, see
  ``TargetStats.success_rate``); no calls yet counts as healthy;
- latency: calls slower on average than the breaker's ``slow_call_s`` scale it down in proportion;
- breaker: open is 0 (down); half-open halves it (a probe is deciding);
- cooldown: a rate-limit cooldown takes a quarter off: the target answers, but not now.
"""

from __future__ import annotations

from ccrouter.status import BreakerState

__all__ = ["health_score"]

_HALF_OPEN = 0.5
_COOLING = 0.75


def health_score(
    *,
    success_rate: float | None,
    latency_s: float | None,
    breaker: BreakerState,
    cooldown_s: float,
    slow_call_s: float,
) -> float:
    """The target's health, 0..1, from its recent outcomes, latency EWMA, breaker and cooldown."""
    if breaker == "open":
        return 0.0
    score = 1.0 if success_rate is None else success_rate
    if latency_s is not None and latency_s > slow_call_s:
        score *= slow_call_s / latency_s
    if breaker == "half_open":
        score *= _HALF_OPEN
    if cooldown_s > 0:
        score *= _COOLING
    return score
