"""Live routing state shared through the real local Redis: two gateway instances respect one rpm
limit together, and a 429 seen by one instance cools the target for both."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from gateway_support import GatewayFactory

from ccrouter.config import Settings
from ccrouter.resilience.ratelimits import ConfiguredLimits
from ccrouter.resilience.windows import DAY, RedisWindows
from ccrouter.testing import FakeUpstream, Fault

REDIS_URL = "redis://127.0.0.1:6379/0"
MODEL = "claude-sonnet-4-6"
BODY = {"model": MODEL, "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def prefix(redis_prefix: str) -> str:
    return redis_prefix


@pytest.fixture
async def two_fakes() -> AsyncIterator[tuple[FakeUpstream, FakeUpstream]]:
    async with FakeUpstream(rate_limit_headers=False) as a, FakeUpstream(rate_limit_headers=False) as b:
        yield a, b


def _settings(a: FakeUpstream, b: FakeUpstream, prefix: str, **routing: Any) -> Settings:
    return Settings.model_validate(
        {
            "providers": [
                {
                    "name": "a",
                    "type": "anthropic",
                    "base_url": a.url,
                    "api_key": "sk-a",
                    "models": [MODEL],
                    "rpm": 5,
                },
                {"name": "b", "type": "anthropic", "base_url": b.url, "api_key": "sk-b", "models": [MODEL]},
            ],
            "router": {"default": f"a,{MODEL}", "fallback": {"default": [f"b,{MODEL}"]}},
            "routing": {"strategy": "priority", **routing},
            "state": {"redis_url": REDIS_URL, "key_prefix": prefix},
        }
    )


async def test_reserve_is_atomic_across_clients(prefix: str) -> None:
    first = RedisWindows.connect(REDIS_URL, prefix)
    second = RedisWindows.connect(REDIS_URL, prefix)
    limits = ConfiguredLimits(rpm=7)
    try:
        granted = await asyncio.gather(
            *(w.reserve("a/m/k0", limits, 1000.0 + i / 100) for i in range(25) for w in (first, second))
        )
        assert sum(granted) == 7
        await first.add_tokens("a/m/k0", 120, 1001.0)
        await second.add_tokens("a/m/k0", 30, 1001.0)
        (usage,) = await second.usage(["a/m/k0"], 1001.0)
        assert (usage.requests_minute, usage.tokens_minute) == (7, 150)
        # A minute later the window is empty again.
        assert await first.reserve("a/m/k0", limits, 1062.0)
    finally:
        await first.aclose()
        await second.aclose()


async def test_day_window_is_bucketed_and_conservative(prefix: str) -> None:
    # The same rules as the in-memory ring (tests/resilience/test_buckets.py), across two clients.
    first = RedisWindows.connect(REDIS_URL, prefix)
    second = RedisWindows.connect(REDIS_URL, prefix)
    limits = ConfiguredLimits(rpd=3)
    start = 1_000_200.0  # on a 5-minute boundary
    try:
        for offset, windows in ((0.0, first), (100.0, second), (200.0, first)):
            assert await windows.reserve("a/m/k0", limits, start + offset)
        assert not await second.reserve("a/m/k0", limits, start + 250.0)
        # A day after the first request its bucket still holds the younger two: no slot yet.
        assert not await first.reserve("a/m/k0", limits, start + DAY + 1)
        (usage,) = await second.usage(["a/m/k0"], start + DAY + 1)
        assert usage.requests_day == 3
        # Once the whole bucket is a day old, the limit frees up and the old bucket is gone.
        assert await second.reserve("a/m/k0", limits, start + DAY + 300)
        (usage,) = await first.usage(["a/m/k0"], start + DAY + 300)
        assert usage.requests_day == 1
        day_key = first._keys("a/m/k0")[1]
        assert len(await first._redis.hgetall(day_key)) == 1
        # One hash field per 5 minutes, not one member per request.
        for i in range(200):
            assert await first.reserve("a/m/k1", ConfiguredLimits(), start + i)
        assert len(await first._redis.hgetall(first._keys("a/m/k1")[1])) == 1
    finally:
        await first.aclose()
        await second.aclose()


async def test_two_gateways_share_one_rpm_limit(
    two_fakes: tuple[FakeUpstream, FakeUpstream], gateway: GatewayFactory, prefix: str
) -> None:
    a, b = two_fakes
    # Threshold 1.0: no proactive skip, so the hard cap alone decides and must hold exactly.
    settings = _settings(a, b, prefix, headroom_threshold=1.0)
    urls = [await gateway(settings), await gateway(settings)]
    async with aiohttp.ClientSession() as session:

        async def one(index: int) -> int:
            async with session.post(urls[index % 2] + "/v1/messages", data=orjson.dumps(BODY)) as response:
                await response.read()
                return response.status

        statuses = await asyncio.gather(*(one(i) for i in range(24)))
    assert statuses == [200] * 24
    assert len(a.requests) == 5
    assert len(b.requests) == 19


async def test_a_cooldown_seen_by_one_instance_holds_for_both(
    two_fakes: tuple[FakeUpstream, FakeUpstream], gateway: GatewayFactory, prefix: str
) -> None:
    a, b = two_fakes
    a.script(Fault("status", status=429, retry_after=30))
    settings = _settings(a, b, prefix)
    first, second = await gateway(settings), await gateway(settings)
    async with aiohttp.ClientSession() as session:
        for url in (first, second, second, first):
            async with session.post(url + "/v1/messages", data=orjson.dumps(BODY)) as response:
                assert response.status == 200
                assert response.headers["x-ccrouter-provider"] == "b"
    assert len(a.requests) == 1
    assert len(b.requests) == 4


async def test_unreachable_redis_degrades_to_memory() -> None:
    # Port 1 on loopback refuses connections: requests go on, counted in this process only.
    windows = RedisWindows.connect("redis://127.0.0.1:1/0", "ccrouter-test-down")
    limits = ConfiguredLimits(rpm=2)
    try:
        granted = [await windows.reserve("a/m/k0", limits, 1000.0 + i) for i in range(3)]
        await windows.set_cooldown("a/m/k0", 1100.0)
        (usage,) = await windows.usage(["a/m/k0"], 1003.0)
    finally:
        await windows.aclose()
    assert granted == [True, True, False]
    assert (usage.requests_minute, usage.cooldown_until) == (2, 1100.0)
