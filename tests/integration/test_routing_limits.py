"""A configured rpm/rpd cap that leaves no candidate: 429 ``rate_limit_error`` with ``retry-after``,
in each client's envelope."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
import redis.asyncio as redis
from gateway_support import GatewayFactory

from ccrouter.config import Settings
from ccrouter.resilience.ratelimits import ConfiguredLimits
from ccrouter.resilience.windows import DAY, MemoryWindows, RedisWindows, WindowStore
from ccrouter.testing import FakeUpstream

MODEL = "claude-sonnet-4-6"
REDIS_URL = "redis://127.0.0.1:6379/0"


def _settings(fake: FakeUpstream, **limits: int) -> Settings:
    return Settings.model_validate(
        {
            "providers": [
                {
                    "name": "up",
                    "type": "anthropic",
                    "base_url": fake.url,
                    "api_key": "sk-up",
                    "models": [{"name": MODEL, **limits}],
                }
            ],
            "router": {"default": f"up,{MODEL}"},
            "routing": {"auto_fallback": "off"},
        }
    )


async def _post(url: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    async with aiohttp.ClientSession() as session, session.post(url + path, json=body) as response:
        headers = {name.lower(): value for name, value in response.headers.items()}
        return response.status, headers, orjson.loads(await response.read())


ANTHROPIC = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
OPENAI = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


async def test_rpm_cap_reached_is_429_with_retry_after(fake: FakeUpstream, gateway: GatewayFactory) -> None:
    url = await gateway(_settings(fake, rpm=1))
    first = await _post(url, "/v1/messages", ANTHROPIC)
    assert first[0] == 200
    status, headers, body = await _post(url, "/v1/messages", ANTHROPIC)
    assert status == 429
    assert body["type"] == "error"
    assert body["error"]["type"] == "rate_limit_error"
    # The minute window frees the first request's slot within a minute.
    assert 1 <= int(headers["retry-after"]) <= 61
    assert len(fake.requests) == 1


async def test_rpd_cap_reached_is_429_with_retry_after_on_openai_front(
    fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    url = await gateway(_settings(fake, rpd=1))
    assert (await _post(url, "/v1/chat/completions", OPENAI))[0] == 200
    status, headers, body = await _post(url, "/v1/chat/completions", OPENAI)
    assert status == 429
    assert body["error"]["code"] == "rate_limit_error"
    # A day window: the slot frees about a day after the first request.
    assert 86_000 <= int(headers["retry-after"]) <= 86_400 + 300
    assert len(fake.requests) == 1


@pytest.fixture
async def redis_windows() -> AsyncIterator[RedisWindows]:
    client = redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (redis.ConnectionError, OSError) as exc:
        await client.aclose()
        pytest.fail(
            f"Redis is not reachable at {REDIS_URL} ({exc}): start it with `redis-server --daemonize yes`"
        )
    windows = RedisWindows(client, f"ccrouter-test-{uuid.uuid4().hex[:12]}")
    yield windows
    await windows.delete_all()
    await windows.aclose()


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_frees_in_is_when_the_oldest_counted_request_leaves(
    store: str, redis_windows: RedisWindows
) -> None:
    windows: WindowStore = MemoryWindows() if store == "memory" else redis_windows
    start = 1_000_000.0
    rpm = ConfiguredLimits(rpm=2)
    assert await windows.reserve("a/m/k0", rpm, start)
    assert await windows.reserve("a/m/k0", rpm, start + 10)
    assert not await windows.reserve("a/m/k0", rpm, start + 20)
    # The first request (at start) leaves the minute window at start + 60 (one 1 s bucket of slack).
    assert 40 <= await windows.frees_in("a/m/k0", rpm, start + 20) <= 41
    rpd = ConfiguredLimits(rpd=1)
    assert await windows.reserve("a/m/k1", rpd, start)
    assert not await windows.reserve("a/m/k1", rpd, start + 100)
    # Day buckets are 5 minutes wide: the slot frees a day after the bucket, at most 300 s late.
    assert DAY - 100 <= await windows.frees_in("a/m/k1", rpd, start + 100) <= DAY - 100 + 300
    # Nothing refused: nothing to wait for.
    assert await windows.frees_in("a/m/k2", rpm, start) == 0.0
