"""Live state per provider, model and credential, and the gates built on it.

``LiveState`` joins the shared windows (``windows.py``: counts and cooldowns, in memory or Redis), the
instance's own statistics (``stats.py``) and breakers (``breaker.py``). Dispatch asks it to ``assess``
candidates before routing, to ``acquire`` one before the call, and tells it the outcome. With
``state.redis_url``, ``shared.SharedLive`` shares the breakers and statistics with the other instances
(through the methods of the last section here).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from ccrouter.config import ProviderConfig, Settings
from ccrouter.errors import CCRouterError, UpstreamRateLimitError
from ccrouter.messages import Usage
from ccrouter.resilience.breaker import CircuitBreaker
from ccrouter.resilience.healthscore import health_score
from ccrouter.resilience.ratelimits import (
    ConfiguredLimits,
    backoff_delay,
    configured_limits,
    parse_rate_limit_headers,
)
from ccrouter.resilience.stats import TargetStats, error_class, merge, snapshot
from ccrouter.resilience.windows import MemoryWindows, WindowStore, WindowUsage
from ccrouter.status import BreakerState, ProviderStatus

if TYPE_CHECKING:
    from ccrouter.resilience.shared import SharedLive

__all__ = ["Assessment", "LiveState", "Refusal", "credential_id"]

log = logging.getLogger("ccrouter.resilience")

# Outcomes that say the provider is unwell (rate limits and client errors do not).
_BREAKER_CLASSES = frozenset({"overloaded", "timeout", "connection", "5xx"})
# Memoised per-target lookups are cleared past this many targets.
_MAX_MEMO = 4096


def credential_id(index: int, key: SecretStr | None) -> str:
    """A stable, secret-free name for a credential: its position and a short hash of it."""
    if key is None:
        return f"k{index}"
    return f"k{index}-{hashlib.sha256(key.get_secret_value().encode()).hexdigest()[:6]}"


@dataclass(slots=True)
class Assessment:
    """What live state says about one candidate (provider + model) right now."""

    provider: str
    model: str
    # 0: ready; 1: usable but held back (near a limit, recovering); 2: blocked (cooling, breaker open).
    tier: int
    credential: str
    headroom: float
    breaker: BreakerState
    cooldown_s: float = 0.0
    latency_s: float | None = None
    ttft_s: float | None = None
    success_rate: float | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why ``LiveState.acquire`` refused a call, and when trying again may succeed (None: unknown)."""

    reason: str
    retry_after_s: float | None = None

    def __str__(self) -> str:
        return self.reason


class LiveState:
    def __init__(
        self,
        settings: Settings,
        windows: WindowStore | None = None,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        shared: SharedLive | None = None,
    ) -> None:
        """``shared``: the other instances' live state (``state.redis_url``), None: this one's alone."""
        self._settings = settings
        self.shared = shared
        self._config = settings.routing
        self.windows: WindowStore = windows if windows is not None else MemoryWindows()
        self.clock = clock
        self._rng = rng or random.Random()
        self._stats: dict[str, TargetStats] = {}
        self._breakers: dict[str, CircuitBreaker] = {}
        self._credentials = {
            p.name: [credential_id(i, key) for i, key in enumerate(p.credentials())]
            for p in settings.providers
        }
        self._rotation: dict[str, itertools.count[int]] = {}
        self._usage: dict[str, WindowUsage] = {}
        self._limits: dict[tuple[str, str], ConfiguredLimits] = {}
        self._keys: dict[tuple[str, str], list[tuple[str, str, str]]] = {}

    def carry_from(self, previous: LiveState) -> None:
        """Take over ``previous``'s state (a configuration reload) for every target that still exists:
        the same statistics and breakers (shared, so calls still in flight on the old configuration
        count here too), rotation and last window reads. Breakers restart closed when the breaker
        settings changed; cooldowns and windows live in ``windows``, which the caller shares."""
        kept = {name: set(creds) for name, creds in self._credentials.items()}

        def exists(key: str, has_credential: bool) -> bool:
            provider, _, rest = key.partition("/")
            creds = kept.get(provider)
            return creds is not None and (not has_credential or rest.rpartition("/")[2] in creds)

        self._stats = {k: v for k, v in previous._stats.items() if exists(k, True)}
        if previous._config.breaker == self._config.breaker:
            self._breakers = {k: v for k, v in previous._breakers.items() if exists(k, False)}
        self._rotation = {k: v for k, v in previous._rotation.items() if k in kept}
        self._usage = {k: v for k, v in previous._usage.items() if exists(k, True)}

    # ------------------------------------------------------------------ lookups

    def credentials(self, provider: str) -> list[str]:
        return self._credentials.get(provider, ["k0"])

    def stats(self, provider: str, model: str, credential: str) -> TargetStats:
        key = f"{provider}/{model}/{credential}"
        found = self._stats.get(key)
        if found is None:
            found = self._stats[key] = TargetStats()
        return found

    def breaker(self, provider: str, model: str) -> CircuitBreaker:
        key = f"{provider}/{model}"
        found = self._breakers.get(key)
        if found is None:
            found = self._breakers[key] = CircuitBreaker(self._config.breaker, self.clock)
        return found

    def limits(self, provider: str, model: str) -> ConfiguredLimits:
        # The settings are frozen, so each target's limits are worked out once.
        key = (provider, model)
        found = self._limits.get(key)
        if found is None:
            config = self._settings.provider(provider)
            found = configured_limits(config, model) if config is not None else ConfiguredLimits()
            if len(self._limits) >= _MAX_MEMO:  # clients may name any model: stay bounded
                self._limits.clear()
            self._limits[key] = found
        return found

    # ------------------------------------------------------------------ before the call

    async def assess(self, targets: Sequence[tuple[str, str]]) -> list[Assessment]:
        """One window read for every credential of every target, then each target's verdict."""
        now = self.clock()
        per_target = [self._target_keys(provider, model) for provider, model in targets]
        keys = [key for creds in per_target for _, window, auth in creds for key in (window, auth)]
        usage = dict(zip(keys, await self.windows.usage(keys, now), strict=True))
        self._usage.update(usage)
        return [
            self._assess_one(provider, model, creds, usage, now)
            for (provider, model), creds in zip(targets, per_target, strict=True)
        ]

    def _target_keys(self, provider: str, model: str) -> list[tuple[str, str, str]]:
        """(credential, its window key, its auth key) for each credential of the target."""
        found = self._keys.get((provider, model))
        if found is None:
            found = [
                (cred, f"{provider}/{model}/{cred}", f"{provider}/{cred}/auth")
                for cred in self.credentials(provider)
            ]
            if len(self._keys) >= _MAX_MEMO:  # clients may name any model: stay bounded
                self._keys.clear()
            self._keys[(provider, model)] = found
        return found

    def _assess_one(
        self,
        provider: str,
        model: str,
        creds: list[tuple[str, str, str]],
        usage: Mapping[str, WindowUsage],
        now: float,
    ) -> Assessment:
        limits = self.limits(provider, model)
        threshold = self._config.headroom_threshold
        ranked = []
        # Rotate among equals so every key of a pool carries its share.
        turn = next(self._rotation.setdefault(provider, itertools.count())) if len(creds) > 1 else 0
        for index, (cred, window_key, auth_key) in enumerate(creds):
            window = usage[window_key]
            cooldown = max(window.cooldown_until, usage[auth_key].cooldown_until) - now
            headroom = self._headroom(window, limits, self.stats(provider, model, cred), now)
            # At or above the threshold share of a limit (with float slack: 4/5 is "at 80%").
            near = 1.0 - headroom >= threshold - 1e-9
            held = self._held(window.cooldown_until, now)
            order = (cooldown > 0, near, held, -round(headroom, 1), (index - turn) % len(creds))
            ranked.append((order, cred, cooldown, headroom))
        if len(ranked) > 1:
            ranked.sort(key=lambda item: item[0])
        (blocked, near, held, *_), cred, cooldown, headroom = ranked[0]
        breaker = self.breaker(provider, model)
        stats = self.stats(provider, model, cred)
        latency, ttft = stats.recent(now)
        assessment = Assessment(
            provider,
            model,
            0,
            cred,
            headroom,
            breaker.state,
            max(0.0, cooldown),
            latency,
            ttft,
            stats.success_rate(),
        )
        if blocked:
            assessment.tier = 2
            assessment.notes.append(f"cooling down {cooldown:.1f}s")
        if breaker.state == "open":
            assessment.tier = 2
            assessment.cooldown_s = max(assessment.cooldown_s, breaker.retry_in())
            assessment.notes.append(f"breaker open ({breaker.reason})")
        if assessment.tier == 0 and near:
            assessment.tier = 1
            assessment.notes.append(f"at {1 - headroom:.0%} of its limit")
        if assessment.tier == 0 and held:
            assessment.tier = 1
            assessment.notes.append("recovering from a rate limit: held back this time")
        return assessment

    def _headroom(
        self, window: WindowUsage, limits: ConfiguredLimits, stats: TargetStats, now: float
    ) -> float:
        used = [0.0]
        if limits.rpm:
            used.append(window.requests_minute / limits.rpm)
        if limits.tpm:
            used.append(window.tokens_minute / limits.tpm)
        if limits.rpd:
            used.append(window.requests_day / limits.rpd)
        announced = stats.current_announced()
        if announced is not None:
            used.append(announced.used_share(now))
        return max(0.0, 1.0 - max(used))

    def _held(self, cooldown_until: float, now: float) -> bool:
        """After a cooldown, admit a rising share of traffic: floor -> 1 over ``recovery_s``."""
        config = self._config
        since = now - cooldown_until
        if cooldown_until <= 0 or since < 0 or config.recovery_s <= 0 or since >= config.recovery_s:
            return False
        share = config.recovery_floor + (1 - config.recovery_floor) * since / config.recovery_s
        return self._rng.random() >= share

    async def acquire(self, provider: str, model: str, credential: str) -> Refusal | None:
        """Take a slot for a call: None when it may go, else why not (breaker, configured limit) and,
        for a configured limit, how long until its window frees a slot (the client's Retry-After)."""
        breaker = self.breaker(provider, model)
        if not breaker.allow():
            return Refusal(f"breaker {breaker.state}", breaker.retry_in() or None)
        shared = self.shared
        if (
            breaker.state == "half_open"
            and shared is not None
            and not await shared.take_probe(f"{provider}/{model}", breaker.opened_at)
        ):
            breaker.release()
            return Refusal("breaker half_open: another instance sends the probe")
        limits = self.limits(provider, model)
        key = f"{provider}/{model}/{credential}"
        now = self.clock()
        if limits.any and not await self.windows.reserve(key, limits, now):
            breaker.release()
            wait = await self.windows.frees_in(key, limits, now)
            return Refusal("configured rate limit reached", wait if wait > 0 else None)
        if not limits.any:
            # Counted anyway, for the status views.
            await self.windows.reserve(f"{provider}/{model}/{credential}", limits, self.clock())
        self.stats(provider, model, credential).in_flight += 1
        return None

    def release(self, provider: str, model: str, credential: str) -> None:
        """A call that ``acquire`` let through ended without an outcome (cancelled)."""
        stats = self.stats(provider, model, credential)
        stats.in_flight = max(0, stats.in_flight - 1)
        self.breaker(provider, model).release()

    # ------------------------------------------------------------------ after the call

    def on_headers(self, provider: str, credential: str, model: str, headers: Mapping[str, str]) -> None:
        """Announced limits from any response (HttpProvider calls this for every response head)."""
        now = self.clock()
        announced = parse_rate_limit_headers(headers, now)
        if announced is not None:
            self.stats(provider, model, credential).set_announced(announced, now)

    async def on_success(
        self,
        provider: str,
        model: str,
        credential: str,
        duration_s: float,
        usage: Usage,
        ttft_s: float | None = None,
    ) -> None:
        now = self.clock()
        stats = self.stats(provider, model, credential)
        stats.in_flight = max(0, stats.in_flight - 1)
        stats.rate_limited_in_a_row = 0
        stats.record(now, "ok", duration_s)
        stats.record_speed(ttft_s, usage.output_tokens, duration_s)
        breaker = self.breaker(provider, model)
        before = breaker.state
        breaker.record(failed=False, duration_s=duration_s)
        if before != breaker.state:
            log.info("breaker %s,%s: %s -> %s", provider, model, before, breaker.state)
            if self.shared is not None:
                self.shared.breaker_changed(f"{provider}/{model}", breaker)
        tokens = usage.input_tokens + usage.output_tokens + usage.cache_creation_input_tokens
        await self.windows.add_tokens(f"{provider}/{model}/{credential}", tokens, now)

    async def on_failure(
        self, provider: str, model: str, credential: str, exc: CCRouterError, duration_s: float
    ) -> str:
        """Record a failed call; returns its outcome class."""
        now = self.clock()
        stats = self.stats(provider, model, credential)
        stats.in_flight = max(0, stats.in_flight - 1)
        outcome = error_class(exc)
        stats.record(now, outcome, duration_s)
        if isinstance(exc, UpstreamRateLimitError):
            # The cooldown now stands for the exhausted limit; the ramp after it does the recovery.
            cooldown = self._cooldown(stats, exc, now)
            stats.set_announced(None, now)
            await self.windows.set_cooldown(f"{provider}/{model}/{credential}", now + cooldown)
        elif exc.status in (401, 403):
            await self.windows.set_cooldown(
                f"{provider}/{credential}/auth", now + self._config.auth_cooldown_s
            )
        if outcome in _BREAKER_CLASSES or exc.error_type == "api_error":
            breaker = self.breaker(provider, model)
            before = breaker.state
            breaker.record(failed=True, duration_s=duration_s)
            if before != breaker.state:
                log.warning(
                    "breaker %s,%s: %s -> %s (%s)", provider, model, before, breaker.state, breaker.reason
                )
                if self.shared is not None:
                    self.shared.breaker_changed(f"{provider}/{model}", breaker)
        return outcome

    def _cooldown(self, stats: TargetStats, exc: UpstreamRateLimitError, now: float) -> float:
        """Retry-After when announced, else the announced reset, else exponential backoff with jitter."""
        if exc.retry_after is not None:
            return exc.retry_after
        announced = stats.current_announced()
        resets = (
            [
                r - now
                for r in (announced.requests_reset_at, announced.tokens_reset_at)
                if announced is not None and r is not None and r > now
            ]
            if announced is not None
            else []
        )
        if resets:
            return float(min(resets))
        stats.rate_limited_in_a_row += 1
        config = self._config
        return backoff_delay(
            stats.rate_limited_in_a_row, config.backoff_base_s, config.backoff_max_s, self._rng
        )

    # ------------------------------------------------------------------ status views

    def provider_statuses(self) -> list[ProviderStatus]:
        """``ccrouter.status.ProviderStatusSource``: one row per configured provider and model, from the
        last window read (no I/O, so metrics can call it at scrape time)."""
        now = self.clock()
        rows = []
        for config in self._settings.providers:
            for model in self._models(config):
                rows.append(self._status(config.name, model, now))
        return rows

    def status(self, provider: str, model: str) -> ProviderStatus | None:
        """One configured provider's row of ``provider_statuses`` (None for a provider the
        configuration does not have), from the last window read: no I/O."""
        if self._settings.provider(provider) is None:
            return None
        return self._status(provider, model, self.clock())

    def _models(self, config: ProviderConfig) -> list[str]:
        seen = {key.split("/")[1] for key in self._breakers if key.startswith(config.name + "/")}
        return [*(m.name for m in config.models), *sorted(seen - {m.name for m in config.models})]

    def _status(self, provider: str, model: str, now: float) -> ProviderStatus:
        limits = self.limits(provider, model)
        creds = self.credentials(provider)
        windows = [self._usage.get(f"{provider}/{model}/{c}", WindowUsage()) for c in creds]
        stats = [self.stats(provider, model, c) for c in creds]
        headroom = max(self._headroom(w, limits, s, now) for w, s in zip(windows, stats, strict=True))
        cooldown = min(max(0.0, w.cooldown_until - now) for w in windows)
        breaker = self.breaker(provider, model)
        latencies = [lat for lat in (s.averages()[0] for s in stats) if lat is not None]
        rates = [r for r in (s.success_rate() for s in stats) if r is not None]
        reliability = sum(rates) / len(rates) if rates else 1.0
        latency = sum(latencies) / len(latencies) if latencies else None
        health = health_score(
            success_rate=reliability if rates else None,
            latency_s=latency,
            breaker=breaker.state,
            cooldown_s=cooldown,
            slow_call_s=self._config.breaker.slow_call_s,
        )
        return ProviderStatus(
            provider=provider,
            model=model,
            breaker=breaker.state,
            headroom=round(headroom, 4),
            health_score=round(health, 4),
            cooldown_s=round(max(cooldown, breaker.retry_in()), 3),
            requests_per_minute=float(sum(w.requests_minute for w in windows)),
            tokens_per_minute=float(sum(w.tokens_minute for w in windows)),
            latency_ewma_s=round(latency, 4) if latency is not None else None,
            error_rate=round(1.0 - reliability, 4),
        )

    def detail(self, provider: str, model: str) -> dict[str, object]:
        """What ``ProviderStatus`` leaves out: speed, in-flight calls, outcomes by class, announced limits."""
        stats = [self.stats(provider, model, c) for c in self.credentials(provider)]
        averages = [s.averages() for s in stats]
        ttft = [a[1] for a in averages if a[1] is not None]
        tps = [a[2] for a in averages if a[2] is not None]
        outcomes: dict[str, int] = {}
        for item in stats:
            for outcome, count in item.counts().items():
                outcomes[outcome] = outcomes.get(outcome, 0) + count
        now = self.clock()
        announced = [a.used_share(now) for a in (s.current_announced() for s in stats) if a is not None]
        return {
            "ttft_ewma_s": round(sum(ttft) / len(ttft), 4) if ttft else None,
            "output_tokens_per_s": round(sum(tps) / len(tps), 1) if tps else None,
            "in_flight": sum(s.in_flight for s in stats),
            "outcomes_5m": outcomes,
            "announced_used_share": round(max(announced), 4) if announced else None,
        }

    async def refresh(self) -> None:
        """Re-read the shared windows of every configured target (health endpoint)."""
        targets = [(c.name, m) for c in self._settings.providers for m in self._models(c)]
        await self.assess(targets)

    # ------------------------------------------------------------------ shared with other instances

    def snapshot(self, now: float) -> dict[str, list[Any]]:
        """This instance's own figures per target ("provider/model/credential"), for the others."""
        out = {}
        for key, stats in self._stats.items():
            entry = snapshot(stats, now)
            if entry is not None:
                out[key] = entry
        return out

    def apply_merged(self, snapshots: Sequence[Mapping[str, Sequence[Any]]], now: float) -> None:
        """Every instance's ``snapshot`` (this one's included): from now on each target's figures are
        those of all merged; targets of providers this configuration lacks are left out."""
        per_target: dict[str, list[Sequence[Any]]] = {}
        for targets in snapshots:
            for key, entry in targets.items():
                per_target.setdefault(key, []).append(entry)
        for key, stats in self._stats.items():
            if key not in per_target:
                stats.merged = None
        for key, entries in per_target.items():
            provider, _, rest = key.partition("/")
            model, _, credential = rest.rpartition("/")
            if credential in self._credentials.get(provider, ()):
                self.stats(provider, model, credential).merged = merge(entries, now)

    def forget_merged(self) -> None:
        """Shared state out of reach: each target's figures are this instance's own again."""
        for stats in self._stats.values():
            stats.merged = None

    def breakers(self) -> dict[str, CircuitBreaker]:
        """Every breaker, by "provider/model"."""
        return dict(self._breakers)

    def apply_breaker(self, key: str, state: BreakerState, at: float, reason: str) -> None:
        """Another instance's breaker transition for ``key`` ("provider/model")."""
        provider, _, model = key.partition("/")
        if provider not in self._credentials:
            return
        breaker = self.breaker(provider, model)
        before = breaker.state
        if breaker.apply(state, at, reason) and before != breaker.state:
            log.info(
                "breaker %s,%s: %s -> %s (another instance: %s)",
                provider,
                model,
                before,
                breaker.state,
                reason or state,
            )
