"""GET /api/overview and GET /api/live through the real app, in front of two fake upstreams: the
traffic per provider and model, the providers' state, spend today, the charts' series; the live
stream's snapshots, its limit (a 429 in the Anthropic envelope), a reload it survives, and a
shutdown it does not hold up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml
from aiohttp.test_utils import TestServer

from ccrouter.api import live as live_api
from ccrouter.api.live import LIVE_HUB, LiveHub
from ccrouter.api.overview import SPEND_TODAY
from ccrouter.api.state import GATEWAY
from ccrouter.app import create_app
from ccrouter.config_file import load_settings
from ccrouter.errors import TooManyStreamsError
from ccrouter.store.base import StoreUnavailableError
from ccrouter.testing import FakeUpstream, Fault

ADMIN = "admin-token-overview-0123456789"
VIEWER = "viewer-key-overview-0123456789"
CLIENT = "client-key-overview-0123456789"


def _config(tmp_path: Path, alpha: str, beta: str, **extra: Any) -> dict[str, Any]:
    return {
        "server": {
            "admin_token": ADMIN,
            "api_keys": [
                {"name": "vera", "key": VIEWER, "role": "viewer"},
                {"name": "cli", "key": CLIENT},
            ],
        },
        "providers": [
            {
                "name": "alpha",
                "type": "anthropic",
                "base_url": alpha,
                "api_key": "sk-alpha-upstream-secret",
                "models": ["claude-sonnet-4-6"],
            },
            {
                "name": "beta",
                "type": "openai",
                "base_url": beta + "/v1",
                "api_key": "sk-beta-upstream-secret",
                "models": ["gpt-test"],
            },
        ],
        "router": {"default": "alpha,claude-sonnet-4-6"},
        "store": {"url": f"sqlite:///{tmp_path / 'usage.db'}", "flush_interval_s": 0.05},
        **extra,
    }


@pytest.fixture
async def upstreams() -> AsyncIterator[tuple[FakeUpstream, FakeUpstream]]:
    async with FakeUpstream() as alpha, FakeUpstream() as beta:
        yield alpha, beta


Served = Callable[..., Any]


@pytest.fixture
async def served(
    tmp_path: Path, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> AsyncIterator[Callable[..., Any]]:
    servers: list[TestServer] = []

    async def start(**extra: Any) -> tuple[TestServer, Path]:
        path = tmp_path / "config.yaml"
        text = yaml.safe_dump(_config(tmp_path, upstreams[0].url, upstreams[1].url, **extra))
        await asyncio.to_thread(path.write_text, text)
        server = TestServer(create_app(load_settings(path), config_path=path, watch=False), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return server, path

    yield start
    for server in servers:
        await server.close()


def _auth(token: str = VIEWER) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def _traffic(session: aiohttp.ClientSession, server: TestServer, alpha: int, beta: int) -> None:
    for route, n in (("alpha,claude-sonnet-4-6", alpha), ("beta,gpt-test", beta)):
        for _ in range(n):
            body = {"model": route, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
            async with session.post(server.make_url("/v1/messages"), json=body, headers=_auth(CLIENT)) as r:
                assert r.status == 200, await r.text()


async def _overview(session: aiohttp.ClientSession, server: TestServer) -> dict[str, Any]:
    async with session.get(server.make_url("/api/overview"), headers=_auth()) as response:
        assert response.status == 200, await response.text()
        assert response.headers["cache-control"] == "no-store"
        body: dict[str, Any] = await response.json()
        return body


async def _events(response: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    """The overview snapshots of an SSE response, as they come."""
    event = ""
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event == "overview":
            yield orjson.loads(line[6:])


async def test_the_overview_counts_traffic_per_provider_and_model(
    served: Served, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    server, _ = await served()
    server.app[SPEND_TODAY].ttl_s = 0.0  # read the ledger at each call
    async with aiohttp.ClientSession() as session:
        empty = await _overview(session, server)
        assert empty["traffic"]["hour"]["requests"] == 0
        assert [p["name"] for p in empty["providers"]] == ["alpha", "beta"]
        await _traffic(session, server, 3, 2)
        for fake in upstreams:  # beta fails, and so does alpha, where the gateway fails over
            fake.script(Fault("status", status=500), Fault("status", status=500), Fault("status", status=500))
        body = {"model": "beta,gpt-test", "max_tokens": 16, "messages": [{"role": "user", "content": "x"}]}
        async with session.post(server.make_url("/v1/messages"), json=body, headers=_auth(CLIENT)) as r:
            assert r.status >= 500
        await asyncio.sleep(0.3)  # the ledger writer's interval
        shown = await _overview(session, server)
    hour, minute = shown["traffic"]["hour"], shown["traffic"]["minute"]
    assert (hour["requests"], hour["errors"]) == (6, 1)
    assert minute["requests"] == 6
    assert minute["error_rate"] == pytest.approx(1 / 6, abs=1e-3)
    assert minute["requests_per_s"] == pytest.approx(0.1)
    assert minute["p50_ms"] > 0
    assert minute["p95_ms"] >= minute["p50_ms"]
    assert hour["input_tokens"] > 0
    assert minute["tokens_per_s"] > 0
    rows = {row["name"]: row for row in shown["providers"]}
    assert rows["alpha"]["hour"]["requests"] + rows["beta"]["hour"]["requests"] == 6
    assert rows["alpha"]["hour"]["errors"] + rows["beta"]["hour"]["errors"] == 1
    for row in rows.values():
        assert row["credentials"] == 1
        assert row["state"] in ("ok", "recovering", "rate_limited", "down")
        assert row["breaker"] in ("closed", "open", "half_open")
        assert 0 <= row["headroom"] <= 1
        assert row["cooldown_s"] >= 0
    models = {(m["provider"], m["model"]): m for m in shown["models"]}
    assert models["alpha", "claude-sonnet-4-6"]["hour"]["requests"] >= 3
    assert models["beta", "gpt-test"]["hour"]["requests"] >= 2
    series = shown["series"]
    assert len(series["t"]) == 60
    assert sum(series["requests"]) == 6
    assert sum(series["errors"]) == 1
    assert series["p95_ms"][-1] is not None or series["requests"][-1] == 0
    # The ledger's spend since UTC midnight (the fakes report usage; the price table knows the models).
    assert shown["spend_today"]["requests"] == 6
    assert shown["spend_today"]["since"] <= time.time()
    assert shown["spend_today"]["cost_usd"] >= 0
    text = orjson.dumps(shown).decode()
    assert "sk-alpha-upstream-secret" not in text
    assert "sk-beta-upstream-secret" not in text


async def test_the_overview_and_the_stream_need_a_viewer(served: Served) -> None:
    server, _ = await served()
    async with aiohttp.ClientSession() as session:
        for path in ("/api/overview", "/api/live"):
            async with session.get(server.make_url(path)) as response:
                assert response.status == 401
            async with session.get(server.make_url(path), headers=_auth(CLIENT)) as response:
                assert response.status == 403
                assert (await response.json())["error"]["type"] == "permission_error"


async def test_the_stream_pushes_snapshots_that_follow_the_traffic(served: Served) -> None:
    server, _ = await served()
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.make_url("/api/live"), headers=_auth()) as response,
    ):
        assert response.status == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response)
        first = await asyncio.wait_for(anext(events), 5)
        assert first["traffic"]["hour"]["requests"] == 0
        assert {p["name"] for p in first["providers"]} == {"alpha", "beta"}
        await _traffic(session, server, 2, 1)
        async with asyncio.timeout(5):
            async for snapshot in events:
                if snapshot["traffic"]["hour"]["requests"] == 3:
                    break
        assert snapshot["now"] > first["now"]


async def test_streams_share_one_snapshot_per_tick(served: Served) -> None:
    server, _ = await served()
    hub = server.app[LIVE_HUB]
    built = 0
    build = hub._build

    async def counting() -> bytes:
        nonlocal built
        built += 1
        return await build()

    hub._build = counting
    async with aiohttp.ClientSession() as session:
        began = time.monotonic()
        responses = [await session.get(server.make_url("/api/live"), headers=_auth()) for _ in range(5)]
        try:
            streams = [_events(r) for r in responses]
            seen = [await asyncio.wait_for(anext(s), 5) for _ in range(3) for s in streams]
            elapsed = time.monotonic() - began
            assert hub.streams == 5
            # One snapshot a tick, whatever the number of streams (not 15 for 15 deliveries), and
            # each stream got one of those.
            assert built <= elapsed / live_api.TICK_S + 2
            assert len({s["now"] for s in seen}) <= built
        finally:
            for response in responses:
                response.close()
    for _ in range(50):
        if hub.streams == 0:
            break
        await asyncio.sleep(0.05)
    assert hub.streams == 0


async def test_past_the_limit_a_stream_is_refused_with_a_429(served: Served) -> None:
    server, _ = await served()
    server.app[LIVE_HUB].max_streams = 2
    async with aiohttp.ClientSession() as session:
        held = [await session.get(server.make_url("/api/live"), headers=_auth()) for _ in range(2)]
        try:
            assert [r.status for r in held] == [200, 200]
            async with session.get(server.make_url("/api/live"), headers=_auth()) as refused:
                assert refused.status == 429
                assert int(refused.headers["retry-after"]) >= 1
                body = await refused.json()
                assert body["type"] == "error"
                assert body["error"]["type"] == "rate_limit_error"
                assert "2 live streams" in body["error"]["message"]
        finally:
            for response in held:
                response.close()
        for _ in range(50):
            if server.app[LIVE_HUB].streams == 0:
                break
            await asyncio.sleep(0.05)
        async with session.get(server.make_url("/api/live"), headers=_auth()) as again:
            assert again.status == 200


async def test_a_stream_survives_a_reload_and_the_old_configuration_still_closes(
    served: Served, tmp_path: Path, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    server, path = await served()
    gateway = server.app[GATEWAY]
    old = gateway.current
    async with aiohttp.ClientSession() as session:
        await _traffic(session, server, 1, 1)
        async with session.get(server.make_url("/api/live"), headers=_auth()) as response:
            events = _events(response)
            before = await asyncio.wait_for(anext(events), 5)
            assert before["traffic"]["hour"]["requests"] == 2
            data = _config(tmp_path, upstreams[0].url, upstreams[1].url, logging={"requests": False})
            await asyncio.to_thread(path.write_text, yaml.safe_dump(data))
            assert (await gateway.reload()).status == "reloaded"
            assert gateway.current is not old
            async with asyncio.timeout(5):  # a tick made during the reload may still come first
                async for after in events:
                    if after["version"] != before["version"]:
                        break
            assert after["version"] == gateway.current.version
            # The traffic recorder is carried over; the retired configuration is not held open.
            assert after["traffic"]["hour"]["requests"] == 2
            assert gateway.current.traffic is old.traffic
            for _ in range(100):
                if not gateway._retiring:
                    break
                await asyncio.sleep(0.02)
            assert not gateway._retiring
            await _traffic(session, server, 1, 0)
            async with asyncio.timeout(5):
                async for snapshot in events:
                    if snapshot["traffic"]["hour"]["requests"] == 3:
                        break


async def test_shutdown_ends_the_streams_at_once(served: Served) -> None:
    server, _ = await served()
    async with aiohttp.ClientSession() as session:
        response = await session.get(server.make_url("/api/live"), headers=_auth())
        events = _events(response)
        await asyncio.wait_for(anext(events), 5)
        began = time.monotonic()
        await asyncio.wait_for(server.close(), 10)
        assert time.monotonic() - began < 5

        async def drain() -> int:
            return len([snapshot async for snapshot in events])

        # The stream ended: whatever was still buffered, then the end (no timeout).
        assert await asyncio.wait_for(drain(), 5) <= 2
        response.close()


async def test_failing_ticks_keep_the_streams_alive_and_closing_ends_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live_api, "_KEEPALIVE_S", 0.2)
    calls = 0

    async def build() -> bytes:
        nonlocal calls
        calls += 1
        if calls % 2:
            raise RuntimeError("a bug in one snapshot")
        raise StoreUnavailableError("the ledger is away")

    hub = LiveHub(build, interval_s=0.02)
    hub.enter()
    snapshots = hub.snapshots()
    assert await asyncio.wait_for(anext(snapshots), 2) is None  # a keep-alive, not a hang
    assert calls >= 2  # the ticks go on after a failure
    await hub.aclose()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(snapshots), 2)
    with pytest.raises(TooManyStreamsError):
        hub.enter()


async def test_a_provider_cooling_down_shows_its_remaining_seconds(
    served: Served, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    server, _ = await served()
    upstreams[1].script(Fault("status", status=429, retry_after=30))
    async with aiohttp.ClientSession() as session:
        body = {"model": "beta,gpt-test", "max_tokens": 16, "messages": [{"role": "user", "content": "x"}]}
        async with session.post(server.make_url("/v1/messages"), json=body, headers=_auth(CLIENT)) as r:
            await r.read()
        shown = await _overview(session, server)
    beta = next(row for row in shown["providers"] if row["name"] == "beta")
    assert beta["state"] == "rate_limited"
    assert 20 < beta["cooldown_s"] <= 30
    model = next(row for row in shown["models"] if row["provider"] == "beta")
    assert model["state"] == "rate_limited"
    assert model["cooldown_s"] == beta["cooldown_s"]
    alpha = next(row for row in shown["providers"] if row["name"] == "alpha")
    assert (alpha["state"], alpha["cooldown_s"]) == ("ok", 0)
