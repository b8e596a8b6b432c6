"""Failover across providers: with three fake upstreams where two fail, every client request succeeds;
429 cooldowns, credential rotation, context-window and client errors, mid-stream breaks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from gateway_support import GatewayFactory

from ccrouter.config import Settings
from ccrouter.plugins import Registry, load_plugins
from ccrouter.providers.registry import close_pools, open_pools
from ccrouter.resilience.health import HealthChecker
from ccrouter.resilience.live import LiveState
from ccrouter.testing import FakeUpstream, Fault, Reply

MODEL = "claude-sonnet-4-6"
BODY = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture
async def fakes() -> AsyncIterator[list[FakeUpstream]]:
    upstreams = [FakeUpstream(rate_limit_headers=False) for _ in range(3)]
    for upstream in upstreams:
        await upstream.start()
    yield upstreams
    for upstream in upstreams:
        await upstream.stop()


def _settings(
    fakes: list[FakeUpstream],
    routing: dict[str, Any] | None = None,
    *,
    api_keys: dict[str, list[str]] | None = None,
    **router: Any,
) -> Settings:
    names = ["a", "b", "c"]
    providers = [
        {
            "name": name,
            "type": "anthropic",
            "base_url": fake.url,
            "api_key": f"sk-{name}-1",
            "models": [MODEL],
            "timeouts": {"connect": 1, "first_byte": 0.3, "idle": 0.5, "total": 2},
            "api_keys": (api_keys or {}).get(name, []),
        }
        for name, fake in zip(names, fakes, strict=True)
    ]
    return Settings.model_validate(
        {
            "providers": providers,
            "router": {
                "default": f"a,{MODEL}",
                "fallback": {"default": [f"b,{MODEL}", f"c,{MODEL}"]},
                **router,
            },
            "routing": {"strategy": "priority", **(routing or {})},
        }
    )


async def _post(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any]
) -> tuple[int, dict[str, str], bytes]:
    async with session.post(url + "/v1/messages", data=orjson.dumps(body)) as response:
        return response.status, dict(response.headers), await response.read()


def _sse_types(raw: bytes) -> list[str]:
    return [line[7:] for line in raw.decode().splitlines() if line.startswith("event: ")]


async def _streamed(url: str) -> tuple[list[str], bytes]:
    """A streamed request's SSE event types and raw body (the status must be 200)."""
    async with aiohttp.ClientSession() as session:
        status, _, raw = await _post(session, url, {**BODY, "stream": True})
    assert status == 200
    return _sse_types(raw), raw


async def test_two_of_three_failing_all_200_requests_succeed(
    fakes: list[FakeUpstream], gateway: GatewayFactory
) -> None:
    a, b, c = fakes
    # a: a 429 storm with Retry-After, then a 5xx burst; b: timeouts and drops before the first byte.
    a.script(*[Fault("status", status=429, retry_after=1) for _ in range(150)])
    a.script(*[Fault("status", status=s) for s in (500, 502, 503, 529) for _ in range(60)])
    b.script(*[Fault("timeout", delay=5) if i % 2 else Fault("drop_before_first_byte") for i in range(400)])
    url = await gateway(_settings(fakes))
    limit = asyncio.Semaphore(20)
    results: list[tuple[int, dict[str, str], bytes, bool]] = []

    async def one(session: aiohttp.ClientSession, index: int) -> None:
        stream = index % 2 == 0
        async with limit:
            status, headers, raw = await _post(session, url, {**BODY, "stream": stream})
        results.append((status, headers, raw, stream))

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one(session, i) for i in range(200)))
    statuses = [r[0] for r in results]
    assert statuses == [200] * 200
    for _, headers, raw, stream in results:
        assert headers["x-ccrouter-provider"] == "c"
        if stream:
            types = _sse_types(raw)
            assert types[-1] == "message_stop"
            assert "error" not in types
        else:
            assert orjson.loads(raw)["content"][0]["type"] == "text"
    assert len(c.requests) == 200
    # The failing ones were tried, then skipped while cooling down or with their breaker open.
    assert 0 < len(a.requests) < 200
    assert 0 < len(b.requests) < 60
    assert any(h["x-ccrouter-fallbacks"] != "0" for _, h, _, _ in results)


async def test_retry_after_quiet_period_then_gradual_share(
    fakes: list[FakeUpstream], gateway: GatewayFactory
) -> None:
    a, _, c = fakes
    a.script(Fault("status", status=429, retry_after=1))
    settings = _settings(fakes, {"recovery_s": 2.0, "recovery_floor": 0.1, "auto_fallback": "off"})
    url = await gateway(settings)
    served: list[tuple[float, str]] = []
    async with aiohttp.ClientSession() as session:
        status, headers, _ = await _post(session, url, BODY)
        start = time.monotonic()
        assert (status, headers["x-ccrouter-provider"]) == (200, "b")
        assert headers["x-ccrouter-fallbacks"].startswith(f"a,{MODEL}=rate_limit_error/429")
        while (now := time.monotonic()) - start < 3.6:
            status, headers, _ = await _post(session, url, BODY)
            assert status == 200
            served.append((now - start, headers["x-ccrouter-provider"]))
            await asyncio.sleep(0.02)
    assert len(a.requests) > 1

    def share(low: float, high: float) -> float:
        window = [p for t, p in served if low <= t < high]
        assert len(window) >= 5
        return sum(p == "a" for p in window) / len(window)

    # Retry-After: 1 -> no request at all for (almost) a second; the clocks differ by the round trip.
    assert share(0.0, 0.9) == 0.0
    # Expected shares: ~0.22 early in the 2 s ramp, ~0.87 late in it.
    early, late = share(1.05, 1.6), share(2.4, 3.0)
    assert early < late
    assert early < 0.7
    assert share(3.1, 3.6) == 1.0
    assert len(c.requests) == 0


async def test_break_after_first_byte_is_an_sse_error(
    fakes: list[FakeUpstream], gateway: GatewayFactory
) -> None:
    a, b, _ = fakes
    a.script(Fault("drop_mid_stream", after_chunks=3, reply=Reply(text="a long answer " * 20)))
    types, raw = await _streamed(await gateway(_settings(fakes)))
    assert types[0] == "message_start"
    assert types[-1] == "error"
    assert b'"type":"overloaded_error"' in raw
    # No failover once the client has bytes: b never saw the request.
    assert b.requests == []


async def test_an_upstream_silent_past_the_idle_timeout_ends_the_stream_with_an_error(
    fakes: list[FakeUpstream], gateway: GatewayFactory
) -> None:
    a, _, _ = fakes
    a.script(Reply(text="abcdefgh" * 4, chunk_size=8, chunk_delay=0.8))  # idle is 0.5 s
    types, raw = await _streamed(await gateway(_settings(fakes)))
    assert types[0] == "message_start"
    assert types[-1] == "error"
    assert b"stream idle for more than 0.5s" in raw


async def test_the_idle_timeout_counts_from_the_last_chunk_not_the_start(
    fakes: list[FakeUpstream], gateway: GatewayFactory
) -> None:
    a, _, _ = fakes
    # Ten frames 0.15 s apart: 1.5 s in all, three times the idle timeout, never idle that long.
    a.script(Reply(text="abcdefgh" * 6, chunk_size=8, chunk_delay=0.15))
    types, _ = await _streamed(await gateway(_settings(fakes)))
    assert types[-1] == "message_stop"
    assert "error" not in types


async def test_auth_error_rotates_to_the_next_credential(
    fakes: list[FakeUpstream], gateway: GatewayFactory
) -> None:
    a, b, _ = fakes
    settings = _settings(fakes, api_keys={"a": ["sk-a-2"]})
    a.script(Fault("status", status=401), Reply(text="second key works"), Reply(text="again"))
    url = await gateway(settings)
    async with aiohttp.ClientSession() as session:
        status, headers, raw = await _post(session, url, BODY)
        assert (status, headers["x-ccrouter-provider"]) == (200, "a")
        assert orjson.loads(raw)["content"][0]["text"] == "second key works"
        status, headers, raw = await _post(session, url, BODY)
        assert orjson.loads(raw)["content"][0]["text"] == "again"
    keys = [r.headers["x-api-key"] for r in a.requests]
    assert keys == ["sk-a-1", "sk-a-2", "sk-a-2"]
    assert b.requests == []


async def test_context_window_error_moves_to_long_context(
    fakes: list[FakeUpstream], gateway: GatewayFactory
) -> None:
    a, b, c = fakes
    envelope = {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "prompt is too long: 250000 tokens > 200000 maximum",
        },
    }
    a.script(Fault("status", status=400, body=orjson.dumps(envelope)))
    url = await gateway(_settings(fakes, long_context=f"c,{MODEL}", long_context_threshold=1_000_000))
    async with aiohttp.ClientSession() as session:
        status, headers, _ = await _post(session, url, BODY)
    assert (status, headers["x-ccrouter-provider"]) == (200, "c")
    assert (len(a.requests), len(b.requests), len(c.requests)) == (1, 0, 1)


async def test_other_client_errors_return_at_once(fakes: list[FakeUpstream], gateway: GatewayFactory) -> None:
    a, b, c = fakes
    a.script(Fault("status", status=400))
    url = await gateway(_settings(fakes))
    async with aiohttp.ClientSession() as session:
        status, _, raw = await _post(session, url, BODY)
    assert status == 400
    assert orjson.loads(raw)["error"]["type"] == "invalid_request_error"
    assert (len(b.requests), len(c.requests)) == (0, 0)


async def test_provider_health_endpoint(fakes: list[FakeUpstream], gateway: GatewayFactory) -> None:
    a, _, _ = fakes
    a.script(*[Fault("status", status=500) for _ in range(5)])
    url = await gateway(_settings(fakes, {"breaker": {"consecutive_failures": 5}}))
    async with aiohttp.ClientSession() as session:
        for _ in range(6):
            status, _, _ = await _post(session, url, BODY)
            assert status == 200
        async with session.get(url + "/health/providers") as response:
            body = orjson.loads(await response.read())
    rows = {row["provider"]: row for row in body["providers"]}
    assert body["strategy"] == "priority"
    assert rows["a"]["breaker"] == "open"
    assert rows["a"]["state"] == "down"
    assert rows["a"]["breaker_reason"] == "5 consecutive failures"
    assert rows["b"]["state"] == "ok"
    assert rows["b"]["requests_per_minute"] == 6.0
    assert rows["b"]["outcomes_5m"] == {"ok": 6}
    assert rows["a"]["outcomes_5m"] == {"5xx": 5}
    assert rows["b"]["in_flight"] == 0
    assert len(a.requests) == 5


async def test_sessions_stay_on_their_provider(fakes: list[FakeUpstream], gateway: GatewayFactory) -> None:
    url = await gateway(_settings(fakes, {"strategy": "intelligent"}))
    served: list[str] = []
    async with aiohttp.ClientSession(headers={"x-claude-code-session-id": "s-1"}) as session:
        for _ in range(8):
            status, headers, _ = await _post(session, url, BODY)
            assert status == 200
            served.append(headers["x-ccrouter-provider"])
        assert set(served) == {served[0]}
        assert "session kept on" in headers["x-ccrouter-route-reason"]
        first = {"a": fakes[0], "b": fakes[1], "c": fakes[2]}[served[0]]
        first.script(Fault("status", status=503))
        status, headers, _ = await _post(session, url, BODY)
        moved = headers["x-ccrouter-provider"]
        assert (status, moved != served[0]) == (200, True)
        for _ in range(4):
            _, headers, _ = await _post(session, url, BODY)
            assert headers["x-ccrouter-provider"] == moved


async def test_active_health_check_records_outcomes(fakes: list[FakeUpstream]) -> None:
    settings = _settings(fakes, {"health_checks": True})
    fakes[1].script(Fault("status", status=500))
    live = LiveState(settings)
    registry = Registry.build(load_plugins(entry_points=False))
    pools = await open_pools(settings.providers, registry, on_headers=live.on_headers)
    try:
        await HealthChecker(settings, pools, live).check_all()
    finally:
        await close_pools(pools)
    assert [len(f.requests) for f in fakes] == [1, 1, 1]
    assert fakes[0].requests[0].body["max_tokens"] == 1
    rates = {s.provider: s.error_rate for s in live.provider_statuses()}
    assert rates == {"a": 0.0, "b": 1.0, "c": 0.0}
