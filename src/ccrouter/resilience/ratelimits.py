"""Rate limits: what a provider announces in its response headers, what the config sets, and the
cooldown after a 429.

Header families read (values are per credential and model, as the providers document them):

- OpenAI and most OpenAI-compatible vendors: ``x-ratelimit-limit-requests``, ``-remaining-requests``,
  ``-reset-requests`` and the ``-tokens`` triple; resets are durations such as ``1s``, ``6m0s``, ``20ms``
  (https://platform.openai.com/docs/guides/rate-limits#rate-limits-in-headers).
- Anthropic: ``anthropic-ratelimit-requests-limit|remaining|reset`` and ``-tokens-``; resets are RFC 3339
  times (https://docs.anthropic.com/en/api/rate-limits#response-headers).
- ``retry-after`` (seconds or an HTTP date) and ``retry-after-ms``.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from ccrouter.config import ModelSpec, ProviderConfig

__all__ = [
    "AnnouncedLimits",
    "ConfiguredLimits",
    "backoff_delay",
    "configured_limits",
    "parse_duration",
    "parse_rate_limit_headers",
]

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True, slots=True)
class ConfiguredLimits:
    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None

    @property
    def any(self) -> bool:
        return self.rpm is not None or self.tpm is not None or self.rpd is not None


def configured_limits(provider: ProviderConfig, model: str) -> ConfiguredLimits:
    """The model's own limits, else the provider's."""
    spec: ModelSpec | None = provider.model(model)
    return ConfiguredLimits(
        rpm=(spec.rpm if spec is not None and spec.rpm is not None else provider.rpm),
        tpm=(spec.tpm if spec is not None and spec.tpm is not None else provider.tpm),
        rpd=(spec.rpd if spec is not None and spec.rpd is not None else provider.rpd),
    )


@dataclass(frozen=True, slots=True)
class AnnouncedLimits:
    """The last rate-limit figures a provider sent; reset times are absolute (clock seconds)."""

    requests_limit: int | None = None
    requests_remaining: int | None = None
    requests_reset_at: float | None = None
    tokens_limit: int | None = None
    tokens_remaining: int | None = None
    tokens_reset_at: float | None = None

    def used_share(self, now: float) -> float:
        """The larger used share of the announced request and token limits (0 when unknown or reset)."""
        shares = [0.0]
        for limit, remaining, reset_at in (
            (self.requests_limit, self.requests_remaining, self.requests_reset_at),
            (self.tokens_limit, self.tokens_remaining, self.tokens_reset_at),
        ):
            if limit and remaining is not None and (reset_at is None or reset_at > now):
                shares.append(1.0 - max(0, remaining) / limit)
        return max(shares)


def parse_duration(value: str) -> float | None:
    """OpenAI's reset durations (``1s``, ``6m0s``, ``20ms``, ``1h2m3.5s``) or plain seconds."""
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def _reset_at(value: str | None, now: float) -> float | None:
    if not value:
        return None
    seconds = parse_duration(value)
    if seconds is not None:
        return now + seconds
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    # Anthropic's resets are wall-clock times; keep them relative to our (possibly fake) clock.
    return now + max(0.0, when.timestamp() - time.time())


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def parse_rate_limit_headers(headers: Mapping[str, str], now: float) -> AnnouncedLimits | None:
    """The limits announced in ``headers`` (case-insensitive mapping), or None when none are."""
    get = headers.get
    if get("anthropic-ratelimit-requests-limit") is not None or get("anthropic-ratelimit-tokens-limit"):
        found = AnnouncedLimits(
            requests_limit=_int(get("anthropic-ratelimit-requests-limit")),
            requests_remaining=_int(get("anthropic-ratelimit-requests-remaining")),
            requests_reset_at=_reset_at(get("anthropic-ratelimit-requests-reset"), now),
            tokens_limit=_int(get("anthropic-ratelimit-tokens-limit")),
            tokens_remaining=_int(get("anthropic-ratelimit-tokens-remaining")),
            tokens_reset_at=_reset_at(get("anthropic-ratelimit-tokens-reset"), now),
        )
    elif get("x-ratelimit-limit-requests") is not None or get("x-ratelimit-limit-tokens") is not None:
        found = AnnouncedLimits(
            requests_limit=_int(get("x-ratelimit-limit-requests")),
            requests_remaining=_int(get("x-ratelimit-remaining-requests")),
            requests_reset_at=_reset_at(get("x-ratelimit-reset-requests"), now),
            tokens_limit=_int(get("x-ratelimit-limit-tokens")),
            tokens_remaining=_int(get("x-ratelimit-remaining-tokens")),
            tokens_reset_at=_reset_at(get("x-ratelimit-reset-tokens"), now),
        )
    else:
        return None
    return found


def backoff_delay(failures: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter after ``failures`` consecutive 429s without Retry-After: the
    formula stamina uses (``min(cap, base * 2**(n-1) + uniform(0, base))``); its own is not public API."""
    jitter: float = (rng or random).uniform(0, base)
    return min(cap, base * float(2 ** max(0, failures - 1)) + jitter)
