"""What the gateway answers before and around its handlers, over raw sockets (issue 11, Security 6 and
7, and the header cases of Bad input): oversized and malformed heads get our envelope without
echoing them, a key with a non-ASCII byte is a 401, and slow or stuck clients are cut off in time."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from gateway_support import GatewayFactory, keyed_settings
from yarl import URL

from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream, Reply

KEY = "client-key-0123456789"
GOOD = {"model": "claude-sonnet-4-6", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}


def _settings(fake_url: str, tmp_path: Path, **server: Any) -> Settings:
    return keyed_settings(fake_url, tmp_path, KEY, **server)


async def _exchange(url: str, data: bytes, *, wait: float = 5.0) -> tuple[int, dict[str, Any], float]:
    """Send raw bytes, read one response: (status, JSON body, seconds until it had arrived)."""
    address = URL(url)
    assert address.host is not None
    assert address.port is not None
    reader, writer = await asyncio.open_connection(address.host, address.port)
    started = time.perf_counter()
    try:
        writer.write(data)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), wait)
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].startswith("HTTP/1."), head
        headers = dict(line.lower().split(": ", 1) for line in lines[1:] if line)
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), wait)
    finally:
        writer.close()
    return int(lines[0].split()[1]), orjson.loads(body), time.perf_counter() - started


def _head(path: str, *headers: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1".encode(), b"Host: gateway", *headers, b"Content-Length: 2"]
    return b"\r\n".join(lines) + b"\r\n\r\n{}"


async def test_an_oversized_header_is_431_in_our_envelope_without_echoing_it(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    url = await gateway(_settings(fake.url, tmp_path))
    secret_start = b"sk-ant-api03-LEAKED"
    key = secret_start + b"A" * 10_000
    status, body, _ = await _exchange(url, _head("/v1/messages", b"x-api-key: " + key))
    assert status == 431
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "too large" in body["error"]["message"]
    assert secret_start.decode() not in orjson.dumps(body).decode()
    status, body, _ = await _exchange(url, _head("/v1/chat/completions", b"x-api-key: " + key))
    assert status == 431
    assert body["error"]["type"] == "invalid_request_error"
    assert secret_start.decode() not in body["error"]["message"]


async def test_too_many_headers_is_431_in_our_envelope(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    url = await gateway(_settings(fake.url, tmp_path))
    many = [f"x-filler-{i}: {i}".encode() for i in range(300)]
    status, body, _ = await _exchange(url, _head("/v1/messages", *many))
    assert status == 431
    assert body["type"] == "error"
    assert "too many" in body["error"]["message"]


async def test_a_key_with_a_non_ascii_byte_is_401(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    url = await gateway(_settings(fake.url, tmp_path))
    for header in (b"x-api-key: caf\xe9-key", b"Authorization: Bearer caf\xe9-key"):
        status, body, _ = await _exchange(url, _head("/v1/messages", header, b"Connection: close"))
        assert status == 401, body
        assert body["error"]["type"] == "authentication_error"


async def test_a_half_sent_head_is_answered_408_and_closed(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    url = await gateway(_settings(fake.url, tmp_path, header_timeout_s=0.3))
    status, body, elapsed = await _exchange(url, b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n")
    assert status == 408
    assert "header_timeout_s" in body["error"]["message"]  # the OpenAI envelope
    assert elapsed < 2.0
    # A client that sends its head at once is not affected, request after request.
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.get(url + "/health") as response:
                assert response.status == 200
            await asyncio.sleep(0.2)


async def test_a_half_sent_body_is_408_in_the_clients_envelope(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    url = await gateway(_settings(fake.url, tmp_path, body_timeout_s=0.3))
    head = (
        b"POST /v1/messages HTTP/1.1\r\nHost: gateway\r\nx-api-key: "
        + KEY.encode()
        + b"\r\ncontent-type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    status, body, elapsed = await _exchange(url, head + b'{"model":', wait=15.0)
    assert status == 408
    assert body["type"] == "error"
    assert "body_timeout_s" in body["error"]["message"]
    assert elapsed < 2.0


async def test_a_stream_ends_with_an_error_event_after_max_stream_s(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    fake.script(Reply(text="x" * 400, chunk_size=1, chunk_delay=0.01))
    url = await gateway(_settings(fake.url, tmp_path, max_stream_s=0.5))
    started = time.perf_counter()
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/v1/messages", json={**GOOD, "stream": True}, headers={"x-api-key": KEY}) as r,
    ):
        assert r.status == 200
        text = (await r.read()).decode()
    assert time.perf_counter() - started < 2.5
    last = [block for block in text.split("\n\n") if block.strip()][-1]
    assert last.startswith("event: error")
    assert "max_stream_s" in last


async def test_a_flood_of_bad_heads_logs_one_line_a_minute_per_address(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = await gateway(_settings(fake.url, tmp_path))
    with caplog.at_level(logging.INFO, logger="ccrouter.api"):
        for _ in range(5):
            status, _, _ = await _exchange(url, _head("/v1/messages", b"x-api-key: " + b"A" * 10_000))
            assert status == 431
    lines = [r.getMessage() for r in caplog.records if "rejected a request head" in r.getMessage()]
    assert len(lines) == 1, lines
