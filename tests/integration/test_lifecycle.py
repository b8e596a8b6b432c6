"""The gateway's lifecycle as a load balancer sees it (``ccrouter.api.lifecycle``): ``/health/live``,
``/health/ready`` and the drain after SIGTERM, on a real ``ccrouter serve`` process in front of the
shipped fake upstream."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from gateway_support import GatewayFactory
from process_support import free_port, start_gateway

from ccrouter.config import Settings
from ccrouter.config_file import dump_yaml
from ccrouter.store.sqlite import SQLiteStore
from ccrouter.testing import FakeUpstream, Reply

BODY = {"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
OPENAI_BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
SLOW_TEXT = "x" * 30  # one character a frame, 0.1 s apart: a stream of about 3 s


async def _config(tmp_path: Path, fake: FakeUpstream, **server: Any) -> Path:
    document = {
        "server": server,
        "providers": [
            {"name": "up", "type": "anthropic", "base_url": fake.url, "api_key": "sk-x", "models": ["m"]}
        ],
        "router": {"default": "up,m"},
        "store": {"flush_interval_s": 5.0},  # long: only the flush at exit writes the rows
    }
    path = tmp_path / "config.yaml"
    await asyncio.to_thread(path.write_text, dump_yaml(document))
    return path


def _settings(fake: FakeUpstream, **top: Any) -> Settings:
    provider = {"name": "up", "type": "anthropic", "base_url": fake.url, "api_key": "sk-x", "models": ["m"]}
    return Settings.model_validate({"providers": [provider], "router": {"default": "up,m"}, **top})


async def _ledger(tmp_path: Path) -> set[str]:
    store = SQLiteStore(tmp_path / "usage.db")
    await store.open()
    try:
        return {record.request_id for record in await store.records()}
    finally:
        await store.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def _stream(session: aiohttp.ClientSession, url: str, started: asyncio.Event) -> bytes:
    body = {**BODY, "stream": True}
    async with session.post(
        url + "/v1/messages", json=body, headers={"x-request-id": "drain-stream"}
    ) as response:
        assert response.status == 200
        chunks = []
        async for chunk in response.content.iter_any():
            chunks.append(chunk)
            started.set()
        return b"".join(chunks)


async def test_sigterm_fails_ready_serves_the_grace_refuses_then_finishes_the_stream_and_exits_0(
    tmp_path: Path, fake: FakeUpstream, session: aiohttp.ClientSession
) -> None:
    config = await _config(tmp_path, fake, drain_grace_s=1.0, drain_s=20.0)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "gateway.log").open("ab") as log:
        process = await start_gateway(config, port, log)
        try:
            async with session.get(url + "/health/ready") as response:
                assert response.status == 200
                assert (await response.json())["checks"] == {"lifecycle": "ok", "ledger": "ok"}
            fake.script(Reply(text=SLOW_TEXT, chunk_size=1, chunk_delay=0.1), Reply(text="in the grace"))
            started = asyncio.Event()
            stream = asyncio.create_task(_stream(session, url, started))
            await asyncio.wait_for(started.wait(), 10)

            process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            await asyncio.sleep(0.2)
            async with session.get(url + "/health/ready") as response:
                assert response.status == 503
                assert (await response.json()) == {"status": "not ready", "checks": {"lifecycle": "draining"}}
            async with session.get(url + "/health/live") as response:
                assert response.status == 200
            # Within the grace: still served.
            async with session.post(
                url + "/v1/messages", json=BODY, headers={"x-request-id": "in-grace"}
            ) as response:
                assert response.status == 200, await response.text()
            await asyncio.sleep(max(0.0, 1.3 - (time.monotonic() - signalled)))
            # After it: refused with a retryable 529, in each client's own envelope.
            async with session.post(url + "/v1/messages", json=BODY) as response:
                assert response.status == 529
                assert response.headers["retry-after"] == "1"
                error = await response.json()
                assert error["type"] == "error"
                assert error["error"]["type"] == "overloaded_error"
                assert "shutting down" in error["error"]["message"]
            async with session.post(url + "/v1/chat/completions", json=OPENAI_BODY) as response:
                assert response.status == 529
                assert "shutting down" in (await response.json())["error"]["message"]
            assert not stream.done()  # the stream in flight is still going

            streamed = await asyncio.wait_for(stream, 15)
            assert b"event: message_stop" in streamed
            assert streamed.count(b'"text_delta"') == len(SLOW_TEXT)
            assert await asyncio.wait_for(process.wait(), 10) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    # Flushed at exit (the writer's own interval is longer than the test).
    assert {"drain-stream", "in-grace"} <= await _ledger(tmp_path)
    assert len(fake.requests) == 2  # the refused requests never reached the provider


async def test_a_stream_longer_than_drain_s_is_cut_and_the_process_still_exits_0(
    tmp_path: Path, fake: FakeUpstream, session: aiohttp.ClientSession
) -> None:
    config = await _config(tmp_path, fake, drain_s=0.5)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "gateway.log").open("ab") as log:
        process = await start_gateway(config, port, log)
        try:
            fake.script(Reply(text="y" * 100, chunk_size=1, chunk_delay=0.1))  # 10 s
            started = asyncio.Event()
            stream = asyncio.create_task(_stream(session, url, started))
            await asyncio.wait_for(started.wait(), 10)
            process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            assert await asyncio.wait_for(process.wait(), 10) == 0
            assert time.monotonic() - signalled < 4.0  # drain_s, then 1 s for what is left
            try:
                streamed = await asyncio.wait_for(stream, 5)
            except aiohttp.ClientError:
                streamed = b""
            assert streamed.count(b'"text_delta"') < 100
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def test_a_second_signal_stops_at_once(
    tmp_path: Path, fake: FakeUpstream, session: aiohttp.ClientSession
) -> None:
    config = await _config(tmp_path, fake, drain_s=60.0)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "gateway.log").open("ab") as log:
        process = await start_gateway(config, port, log)
        try:
            fake.script(Reply(text="z" * 100, chunk_size=1, chunk_delay=0.1))
            started = asyncio.Event()
            stream = asyncio.create_task(_stream(session, url, started))
            await asyncio.wait_for(started.wait(), 10)
            process.send_signal(signal.SIGINT)
            await asyncio.sleep(0.3)
            assert process.returncode is None  # draining: the stream has 60 s
            process.send_signal(signal.SIGINT)
            assert await asyncio.wait_for(process.wait(), 5) == 0
            stream.cancel()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert "a second signal" in await asyncio.to_thread((tmp_path / "gateway.log").read_text)


async def test_ready_names_an_unreachable_redis_and_live_still_answers(
    fake: FakeUpstream, gateway: GatewayFactory, session: aiohttp.ClientSession
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    url = await gateway(_settings(fake, state={"redis_url": dead}))
    async with session.get(url + "/health/ready") as response:
        assert response.status == 503
        body = await response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["ledger"] == "ok"
    assert body["checks"]["redis"].startswith("unreachable (")
    assert "127.0.0.1" not in body["checks"]["redis"]  # the class of the failure, never the URL
    async with session.get(url + "/health/live") as response:
        assert response.status == 200


async def test_ready_with_redis_and_postgres_reachable(
    fake: FakeUpstream, gateway: GatewayFactory, session: aiohttp.ClientSession
) -> None:
    settings = _settings(fake, state={"redis_url": "redis://127.0.0.1:6379/0"}, store={"url": PG_URL})
    url = await gateway(settings)
    async with session.get(url + "/health/ready") as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["checks"] == {"lifecycle": "ok", "ledger": "ok", "redis": "ok"}
