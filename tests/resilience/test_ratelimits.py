from __future__ import annotations

import random

import pytest
from resilience_support import make_settings

from ccrouter.resilience.ratelimits import (
    AnnouncedLimits,
    backoff_delay,
    configured_limits,
    parse_duration,
    parse_rate_limit_headers,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5), ("7", 7.0), ("0.5", 0.5)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "5x", "1s2"])
def test_parse_duration_rejects(text: str) -> None:
    assert parse_duration(text) is None


def test_openai_headers() -> None:
    headers = {
        "x-ratelimit-limit-requests": "100",
        "x-ratelimit-remaining-requests": "15",
        "x-ratelimit-reset-requests": "6m0s",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "900",
        "x-ratelimit-reset-tokens": "20ms",
    }
    found = parse_rate_limit_headers(headers, now=100.0)
    assert found == AnnouncedLimits(100, 15, 460.0, 1000, 900, pytest.approx(100.02))
    assert found is not None
    assert found.used_share(now=100.0) == pytest.approx(0.85)
    # After the request window resets, only the token share counts.
    assert found.used_share(now=500.0) == 0.0


def test_anthropic_headers_and_none() -> None:
    headers = {
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": "2099-01-01T00:00:00Z",
    }
    found = parse_rate_limit_headers(headers, now=0.0)
    assert found is not None
    assert (found.requests_limit, found.requests_remaining) == (50, 0)
    assert found.requests_reset_at is not None
    assert found.requests_reset_at > 1e9
    assert found.used_share(now=0.0) == 1.0
    assert parse_rate_limit_headers({"content-type": "application/json"}, now=0.0) is None


def test_backoff_grows_and_is_capped() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(n, 1.0, 10.0, rng) for n in range(1, 7)]
    assert 1.0 <= delays[0] <= 2.0
    assert 2.0 <= delays[1] <= 3.0
    assert 4.0 <= delays[2] <= 5.0
    assert delays[-1] == 10.0


def test_configured_limits_model_over_provider() -> None:
    settings = make_settings(rpm=10, tpm=500)
    provider = settings.provider("a")
    assert provider is not None
    limits = configured_limits(provider, "m")
    assert (limits.rpm, limits.tpm, limits.rpd) == (10, 500, None)
    settings = make_settings(rpm=10, models=[{"name": "m", "rpm": 3}])
    provider = settings.provider("a")
    assert provider is not None
    assert configured_limits(provider, "m").rpm == 3
