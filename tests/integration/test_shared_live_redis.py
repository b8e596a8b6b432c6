"""Live state shared by two gateway instances through the real local Redis (issue 17): a breaker one
instance opens holds for both within a second and one probe goes out for both; a session keeps its
provider whichever instance serves the next turn; latency averages are merged, so both rank alike;
Redis stopped mid-test: requests keep succeeding, one log line, and the state re-syncs when it is back."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import orjson
import pytest
import redis.asyncio as redis
from gateway_support import GatewayFactory
from process_support import free_port

from ccrouter.config import Settings
from ccrouter.resilience.shared import TICK_S
from ccrouter.resilience.windows import connect_redis
from ccrouter.testing import FakeUpstream, Fault

REDIS_URL = "redis://127.0.0.1:6379/0"
MODEL = "claude-sonnet-4-6"
SESSION = "5d1c0e8a-7f47-4f0e-9a55-0c1d2e3f4a5b"


@pytest.fixture
def prefix(redis_prefix: str) -> str:
    return redis_prefix


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeUpstream, FakeUpstream]]:
    async with FakeUpstream(rate_limit_headers=False) as a, FakeUpstream(rate_limit_headers=False) as b:
        yield a, b


def _settings(
    a: FakeUpstream, b: FakeUpstream, redis_url: str | None, prefix: str, **routing: Any
) -> Settings:
    return Settings.model_validate(
        {
            "providers": [
                {"name": "a", "type": "anthropic", "base_url": a.url, "api_key": "sk-a", "models": [MODEL]},
                {"name": "b", "type": "anthropic", "base_url": b.url, "api_key": "sk-b", "models": [MODEL]},
            ],
            "router": {"default": f"a,{MODEL}", "fallback": {"default": [f"b,{MODEL}"]}},
            "routing": {"strategy": "priority", **routing},
            "state": {"redis_url": redis_url, "key_prefix": prefix} if redis_url else {},
        }
    )


async def _post(session: aiohttp.ClientSession, url: str, *, session_id: str | None = None) -> str:
    """One request; returns the provider that served it (fails on anything but 200)."""
    body = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"x-claude-code-session-id": session_id} if session_id else {}
    async with session.post(url + "/v1/messages", data=orjson.dumps(body), headers=headers) as response:
        text = await response.text()
        assert response.status == 200, text
        return response.headers["x-ccrouter-provider"]


async def _providers(session: aiohttp.ClientSession, url: str) -> dict[str, dict[str, Any]]:
    async with session.get(url + "/health/providers") as response:
        assert response.status == 200
        rows = (await response.json())["providers"]
    return {row["provider"]: row for row in rows}


async def test_a_breaker_opened_by_one_instance_holds_for_both_and_one_probe_goes_out(
    fakes: tuple[FakeUpstream, FakeUpstream], gateway: GatewayFactory, prefix: str
) -> None:
    a, b = fakes
    a.script(*[Fault("status", status=500)] * 50)
    breaker = {"consecutive_failures": 3, "open_s": 2.0, "success_threshold": 1}
    settings = _settings(a, b, REDIS_URL, prefix, breaker=breaker)
    first, second = await gateway(settings), await gateway(settings)
    async with aiohttp.ClientSession() as session:
        # Both instances start with A's breaker closed: the second calls A once.
        assert await _post(session, second) == "b"
        assert len(a.requests) == 1
        for _ in range(3):
            assert await _post(session, first) == "b"
        assert len(a.requests) == 4
        opened = time.monotonic()
        # The second instance learns it within a second (it has seen one failure of its own only).
        while (await _providers(session, second))["a"]["breaker"] != "open":
            assert time.monotonic() - opened < 1.0, "the second instance did not see the breaker open"
            await asyncio.sleep(0.05)
        served = await asyncio.gather(*(_post(session, url) for url in (first, second) * 5))
        assert set(served) == {"b"}
        assert len(a.requests) == 4
        # Half-open after open_s: both instances at the same moment, one probe between them.
        await asyncio.sleep(2.0 - (time.monotonic() - opened) + 0.1)
        served = await asyncio.gather(*(_post(session, url) for url in (first, second) * 5))
        assert served.count("a") == 0  # the probe failed (A still answers 500)
        assert len(a.requests) == 5, "exactly one half-open probe across both instances"
        # The failed probe reopened the breaker for both: no further calls to A.
        await asyncio.sleep(2 * TICK_S)
        served = await asyncio.gather(*(_post(session, url) for url in (first, second) * 3))
        assert set(served) == {"b"}
        assert len(a.requests) == 5
        # A recovers: the next open period's single probe closes the breaker for both instances.
        a.reset()
        await asyncio.sleep(2.1)
        assert await _post(session, second) == "a"
        await asyncio.sleep(3 * TICK_S)
        assert (await _providers(session, first))["a"]["breaker"] == "closed"
        assert await _post(session, first) == "a"


async def test_a_session_keeps_its_provider_across_instances(
    fakes: tuple[FakeUpstream, FakeUpstream], gateway: GatewayFactory, prefix: str
) -> None:
    a, b = fakes
    settings = _settings(a, b, REDIS_URL, prefix)
    first, second = await gateway(settings), await gateway(settings)
    # Unshared: an instance with its own state (another prefix) knows nothing of the session.
    alone = await gateway(_settings(a, b, REDIS_URL, prefix + "-other"))
    async with aiohttp.ClientSession() as session:
        # Turn 1 on the first instance: A fails once, B serves, the session sticks to B.
        a.script(Fault("status", status=500))
        assert await _post(session, first, session_id=SESSION) == "b"
        # Turn 2 on the second instance: A is fine and first in priority, yet the session stays on B.
        assert await _post(session, second, session_id=SESSION) == "b"
        assert await _post(session, first, session_id=SESSION) == "b"
        # The control: without the shared session the turn goes to A.
        assert await _post(session, alone, session_id=SESSION) == "a"
        # Another session is not affected.
        assert await _post(session, second, session_id="another-session") == "a"


async def test_latency_averages_are_merged_so_both_instances_rank_alike(
    fakes: tuple[FakeUpstream, FakeUpstream], gateway: GatewayFactory, prefix: str
) -> None:
    a, b = fakes
    settings = _settings(a, b, REDIS_URL, prefix)
    first, second = await gateway(settings), await gateway(settings)
    async with aiohttp.ClientSession() as session:
        # A is slow, and only the first instance calls it; only the second calls B (via A's failures).
        a.script(*[Fault("slow_first_byte", delay=0.2)] * 4)
        for _ in range(4):
            assert await _post(session, first) == "a"
        a.script(*[Fault("status", status=500)] * 3)
        for _ in range(3):
            assert await _post(session, second) == "b"
        await asyncio.sleep(4 * TICK_S)
        rows = [await _providers(session, url) for url in (first, second)]
    for provider in ("a", "b"):
        one, two = (r[provider] for r in rows)
        assert one["latency_ewma_s"] is not None, provider
        assert one["latency_ewma_s"] == two["latency_ewma_s"], provider
        assert one["health_score"] == two["health_score"], provider
        assert one["outcomes_5m"] == two["outcomes_5m"], provider
    assert rows[0]["a"]["latency_ewma_s"] >= 0.2
    assert rows[0]["a"]["outcomes_5m"] == {"ok": 4, "5xx": 3}


# ---------------------------------------------------------------- Redis stopped mid-test


@pytest.fixture
def private_redis() -> Iterator[tuple[str, Any]]:
    """A redis-server of this test's own on a free port; yields (url, restart) where ``restart(False)``
    kills it and ``restart(True)`` starts it again on the same port."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not on PATH: install Redis (apt-get install redis-server)")
    port = free_port()
    processes: list[subprocess.Popen[bytes]] = []

    def control(up: bool) -> None:
        if not up:
            for process in processes:
                process.kill()
                process.wait()
            processes.clear()
            return
        processes.append(
            subprocess.Popen(
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    control(True)
    try:
        yield f"redis://127.0.0.1:{port}/0", control
    finally:
        control(False)


async def _wait_redis(url: str) -> None:
    client = connect_redis(url)
    deadline = time.monotonic() + 10
    try:
        while True:
            try:
                await client.ping()
                return
            except (redis.ConnectionError, OSError):
                assert time.monotonic() < deadline, "the private redis-server did not start"
                await asyncio.sleep(0.05)
    finally:
        await client.aclose()


async def test_redis_down_mid_test_degrades_to_local_state_and_resyncs(
    fakes: tuple[FakeUpstream, FakeUpstream],
    gateway: GatewayFactory,
    private_redis: tuple[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = fakes
    url, control = private_redis
    await _wait_redis(url)
    breaker = {"consecutive_failures": 2, "open_s": 30.0}
    settings = _settings(a, b, url, "ccrouter-down", breaker=breaker)
    first, second = await gateway(settings), await gateway(settings)
    caplog.set_level(logging.INFO, logger="ccrouter.resilience")
    async with aiohttp.ClientSession() as session:
        for i in range(4):
            assert await _post(session, (first, second)[i % 2], session_id=SESSION) == "a"
        await asyncio.to_thread(control, False)
        # Requests keep succeeding; A fails on the first instance meanwhile: its breaker opens there.
        a.script(*[Fault("status", status=500)] * 2)
        started = time.monotonic()
        assert [await _post(session, first, session_id=SESSION) for _ in range(2)] == ["b", "b"]
        served = [await _post(session, (first, second)[i % 2], session_id=f"s{i}") for i in range(10)]
        assert time.monotonic() - started < 5.0, "requests waited on Redis"
        # Each instance on its own state: open on the first, closed on the second.
        assert served == ["b", "a"] * 5
        await asyncio.sleep(3 * TICK_S)
        # One line per instance (two in this process), however many calls failed.
        assert len(_logged(caplog, "Redis unreachable")) == 2
        # Back: the breaker the first instance opened meanwhile reaches Redis, and the second.
        await asyncio.to_thread(control, True)
        await _wait_redis(url)
        deadline = time.monotonic() + 5
        while (await _providers(session, second))["a"]["breaker"] != "open":
            assert time.monotonic() < deadline, "the state did not re-sync after Redis came back"
            await asyncio.sleep(0.1)
        client = connect_redis(url)
        try:
            stored = await client.hgetall("ccrouter-down:brk")
        finally:
            await client.aclose()
        assert stored[f"a/{MODEL}".encode()].split(b"|")[1] == b"open"
        assert await _post(session, second) == "b"
    assert len(_logged(caplog, "Redis is back")) == 2


def _logged(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "ccrouter.resilience" and text in r.getMessage()
    ]
