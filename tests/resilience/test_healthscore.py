"""The health measure: outcomes, latency, breaker and cooldown, each lowering it on its own."""

from __future__ import annotations

from ccrouter.resilience.healthscore import health_score
from ccrouter.status import BreakerState


def _score(
    *,
    success_rate: float | None = None,
    latency_s: float | None = None,
    breaker: BreakerState = "closed",
    cooldown_s: float = 0.0,
) -> float:
    return health_score(
        success_rate=success_rate,
        latency_s=latency_s,
        breaker=breaker,
        cooldown_s=cooldown_s,
        slow_call_s=60.0,
    )


def test_each_signal_lowers_health() -> None:
    assert _score() == 1.0
    assert _score(success_rate=0.8) == 0.8
    assert _score(latency_s=30.0) == 1.0  # fast enough
    assert _score(latency_s=120.0) == 0.5  # twice the breaker's slow-call time
    assert _score(breaker="half_open") == 0.5
    assert _score(cooldown_s=5.0) == 0.75
    assert _score(breaker="open", success_rate=1.0) == 0.0
