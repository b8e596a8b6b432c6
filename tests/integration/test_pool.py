"""A provider's connection pool (``providers[].pool_size``) full of open streams: a call that can go
elsewhere goes there at once instead of waiting for a stream to end; one that cannot waits (bounded
by ``timeouts.first_byte``) and then gets its connection, or a retryable 529. Every wait is counted
(``ccr_pool_waits``, ``ccr_pool_wait_seconds``), logged, and named in the route explanation; the
full pool is not held against the provider (its breaker stays closed)."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from gateway_support import GatewayFactory
from process_support import free_port, start_gateway

from ccrouter.app import _bound_socket
from ccrouter.config import DEFAULT_POOL_SIZE, ProviderConfig, ServerConfig, Settings
from ccrouter.config_file import dump_yaml
from ccrouter.testing import FakeUpstream, RecordedRequest, Reply

MODEL = "claude-sonnet-4-6"
BODY = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hello"}]}
SLOW = {**BODY, "messages": [{"role": "user", "content": "slow"}], "stream": True}
# A slow stream holds its connection for about FRAMES * GAP seconds.
FRAMES, GAP = 8, 0.1


def _reply(request: RecordedRequest) -> Reply:
    if b"slow" in request.raw:
        return Reply(text="s" * FRAMES, chunk_size=1, chunk_delay=GAP)
    return Reply(text="quick")


@pytest.fixture
async def fakes() -> AsyncIterator[list[FakeUpstream]]:
    upstreams = [FakeUpstream(default=_reply, rate_limit_headers=False) for _ in range(2)]
    for upstream in upstreams:
        await upstream.start()
    yield upstreams
    for upstream in upstreams:
        await upstream.stop()


def _settings(fakes: list[FakeUpstream], *, fallback: bool, first_byte: float = 5.0) -> Settings:
    providers: list[dict[str, Any]] = [
        {
            "name": name,
            "type": "anthropic",
            "base_url": fake.url,
            "api_key": f"sk-{name}-secret",
            "models": [MODEL],
            "pool_size": 2,
            "timeouts": {"connect": 2, "first_byte": first_byte},
        }
        for name, fake in zip("ab", fakes, strict=True)
    ]
    router: dict[str, Any] = {"default": f"a,{MODEL}"}
    if fallback:
        router["fallback"] = {"default": [f"b,{MODEL}"]}
    routing = {"strategy": "priority", "auto_fallback": "off"}
    return Settings.model_validate({"providers": providers, "router": router, "routing": routing})


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[int, Any, bytes]:
    async with session.post(url + "/v1/messages", data=orjson.dumps(body)) as response:
        return response.status, response.headers, await response.read()


async def _metric(session: aiohttp.ClientSession, url: str, pattern: str) -> float:
    async with session.get(url + "/metrics") as response:
        text = await response.text()
    found = re.search("^" + re.escape(pattern) + r" (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


async def _hold(session: aiohttp.ClientSession, url: str, started: asyncio.Event) -> int:
    """A slow stream through the gateway: ``started`` once its first bytes arrived."""
    async with session.post(url + "/v1/messages", data=orjson.dumps(SLOW)) as response:
        await response.content.readany()
        started.set()
        await response.read()
        return response.status


async def _fill_pool(session: aiohttp.ClientSession, url: str) -> list[asyncio.Task[int]]:
    events = [asyncio.Event(), asyncio.Event()]
    holders = [asyncio.create_task(_hold(session, url, event)) for event in events]
    async with asyncio.timeout(5):
        for event in events:
            await event.wait()
    return holders


async def test_a_full_pool_fails_over_at_once_when_another_candidate_can_serve(
    gateway: GatewayFactory, fakes: list[FakeUpstream], caplog: pytest.LogCaptureFixture
) -> None:
    url = await gateway(_settings(fakes, fallback=True))
    caplog.set_level(logging.WARNING, logger="ccrouter.providers")
    async with aiohttp.ClientSession() as session:
        holders = await _fill_pool(session, url)
        started = time.perf_counter()
        status, headers, raw = await _post(session, url, BODY)
        took = time.perf_counter() - started
        assert [await holder for holder in holders] == [200, 200]
        assert status == 200, raw
        assert headers["x-ccrouter-provider"] == "b"
        assert took < FRAMES * GAP / 2  # it did not wait for a slow stream to end
        assert headers["x-ccrouter-fallbacks"] == f"a,{MODEL}=pool_full/529"
        assert "pool_full" in headers["x-ccrouter-route-reason"]
        assert await _metric(session, url, 'ccr_pool_waits_total{outcome="failed_over",provider="a"}') == 1
        # Not a failure of the provider: a is still served first, its breaker closed.
        status, headers, _ = await _post(session, url, BODY)
        assert (status, headers["x-ccrouter-provider"]) == (200, "a")
        assert (
            await _metric(
                session, url, f'ccr_provider_breaker_state{{model="{MODEL}",provider="a",state="closed"}}'
            )
            == 1
        )
    notices = [
        r.getMessage() for r in caplog.records if "connections of its pool are in use" in r.getMessage()
    ]
    assert len(notices) == 1
    assert "provider a: all 2 connections" in notices[0]
    assert "sk-a-secret" not in notices[0]


async def test_without_another_candidate_the_call_waits_for_a_slot(
    gateway: GatewayFactory, fakes: list[FakeUpstream]
) -> None:
    url = await gateway(_settings(fakes, fallback=False))
    async with aiohttp.ClientSession() as session:
        holders = await _fill_pool(session, url)
        started = time.perf_counter()
        status, headers, raw = await _post(session, url, BODY)
        took = time.perf_counter() - started
        assert [await holder for holder in holders] == [200, 200]
        assert status == 200, raw
        assert headers["x-ccrouter-provider"] == "a"
        assert took > GAP  # it waited for one of the slow streams to end
        waited = re.search(
            r"waited (\d+\.\d+)s for a free connection to a", headers["x-ccrouter-route-reason"]
        )
        assert waited is not None, headers["x-ccrouter-route-reason"]
        assert 0 < float(waited.group(1)) <= took
        assert await _metric(session, url, 'ccr_pool_waits_total{outcome="waited",provider="a"}') == 1
        assert await _metric(session, url, 'ccr_pool_wait_seconds_count{provider="a"}') == 1
        assert 0 < await _metric(session, url, 'ccr_pool_wait_seconds_sum{provider="a"}') <= took


async def test_a_wait_past_first_byte_is_a_retryable_529(
    gateway: GatewayFactory, fakes: list[FakeUpstream]
) -> None:
    url = await gateway(_settings(fakes, fallback=False, first_byte=0.2))
    async with aiohttp.ClientSession() as session:
        holders = await _fill_pool(session, url)
        started = time.perf_counter()
        status, _, raw = await _post(session, url, BODY)
        took = time.perf_counter() - started
        assert [await holder for holder in holders] == [200, 200]
    assert status == 529
    error = orjson.loads(raw)["error"]
    assert error["type"] == "overloaded_error"
    assert "all 2 connections of the gateway's pool to it are in use" in error["message"]
    assert "providers[].pool_size" in error["message"]
    assert 0.2 <= took < FRAMES * GAP


async def test_a_short_expected_wait_is_waited_for_even_with_a_fallback(
    gateway: GatewayFactory, fakes: list[FakeUpstream]
) -> None:
    # Streams that hold a connection for less than first_byte: waiting beats moving to b.
    url = await gateway(_settings(fakes, fallback=True, first_byte=5.0))
    async with aiohttp.ClientSession() as session:
        for _ in range(3):  # the pool learns how long a call holds a connection
            await _hold(session, url, asyncio.Event())
        holders = await _fill_pool(session, url)
        status, headers, _ = await _post(session, url, BODY)
        assert [await holder for holder in holders] == [200, 200]
        assert (status, headers["x-ccrouter-provider"]) == (200, "a")
        assert "waited" in headers["x-ccrouter-route-reason"]


def test_the_defaults_fit_a_team() -> None:
    config = ProviderConfig(name="p", type="anthropic")
    assert config.pool_size == DEFAULT_POOL_SIZE == 1024
    assert ServerConfig().backlog == 2048
    with pytest.raises(ValueError, match="pool_size"):
        ProviderConfig(name="p", type="anthropic", pool_size=0)


@pytest.fixture
def ss() -> str:
    found = shutil.which("ss")
    assert found is not None, "this test needs ss (iproute2: apt-get install iproute2)"
    return found


@pytest.fixture
def backlog_config(tmp_path: Path) -> Path:
    config = tmp_path / "config.yaml"
    provider = {"name": "a", "type": "anthropic", "base_url": "http://127.0.0.1:9", "models": [MODEL]}
    document = {"server": {"backlog": 333}, "providers": [provider], "router": {"default": f"a,{MODEL}"}}
    config.write_text(dump_yaml(document))
    return config


async def test_serve_listens_with_the_configured_backlog(
    tmp_path: Path, ss: str, backlog_config: Path
) -> None:
    """``server.backlog`` reaches listen(): ``ss`` shows a listening socket's backlog as its Send-Q."""
    config = backlog_config
    port = free_port()
    with (tmp_path / "serve.log").open("wb") as log:
        process = await start_gateway(config, port, log)
        try:
            listed = await asyncio.create_subprocess_exec(
                ss, "-Hltn", f"sport = :{port}", stdout=subprocess.PIPE
            )
            stdout, _ = await listed.communicate()
        finally:
            process.terminate()
            await process.wait()
    fields = stdout.decode().split()
    assert fields[0] == "LISTEN", fields
    assert fields[2] == "333", fields


def test_a_port_0_socket_listens_with_the_backlog(ss: str) -> None:
    with _bound_socket("127.0.0.1", 77) as sock:
        port = sock.getsockname()[1]
        out = subprocess.run([ss, "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True)
    assert out.stdout.split()[2] == "77", out.stdout
