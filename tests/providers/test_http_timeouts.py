"""HttpProvider's deadlines: one timer per call, moved as it advances: ``connect`` while connecting
(TCP and TLS), ``first_byte`` from when the request is sent, ``total`` for a whole non-streamed call;
each error names its own limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ccrouter.config import ProviderConfig
from ccrouter.errors import UpstreamConnectionError, UpstreamTimeoutError
from ccrouter.messages import Message, MessagesRequest, TextBlock
from ccrouter.providers.http import HttpProvider, new_session
from ccrouter.providers.openai import OpenAIAdapter
from ccrouter.testing import FakeUpstream, Fault


async def _complete(fake: FakeUpstream | str, **timeouts: Any) -> None:
    cfg = ProviderConfig(
        name="fake",
        type="openai",
        vendor="generic",
        base_url=(fake if isinstance(fake, str) else fake.url) + "/v1",
        api_key="k",
        timeouts={"connect": 0.1} | timeouts,
    )
    provider = HttpProvider(cfg, OpenAIAdapter(cfg), new_session())
    request = MessagesRequest(model="m", max_tokens=10, messages=[Message("user", [TextBlock("hi")])])
    try:
        await provider.complete(request, "fake-model")
    finally:
        await provider.aclose()


async def test_first_byte_counts_from_the_sent_request_not_from_connect(fake: FakeUpstream) -> None:
    # On loopback connecting takes microseconds; a head 0.6 s late must miss a 0.2 s first_byte even
    # though connect (2 s) is generous. (It used to be one connect + first_byte = 2.2 s window.)
    fake.script(Fault("slow_first_byte", delay=0.6))
    started = time.perf_counter()
    with pytest.raises(UpstreamTimeoutError, match=r"^fake: no response within 0\.2s$"):
        await _complete(fake, connect=2, first_byte=0.2, total=5)
    assert time.perf_counter() - started < 0.5


@pytest.fixture
async def silent_tls() -> AsyncIterator[str]:
    """A server that accepts TCP connections and never answers: a TLS handshake there never ends."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_connect_bounds_the_tls_handshake(silent_tls: str) -> None:
    # TCP connects at once, TLS never completes: that is still connecting, bounded by connect.
    started = time.perf_counter()
    async with asyncio.timeout(3):
        with pytest.raises(UpstreamConnectionError, match=r"^fake: not connected within 0\.2s$"):
            await _complete(silent_tls, connect=0.2, first_byte=5, total=10)
    assert time.perf_counter() - started < 1


async def test_total_nearer_than_the_head_deadline(fake: FakeUpstream) -> None:
    fake.script(Fault("slow_first_byte", delay=3))
    with pytest.raises(UpstreamTimeoutError, match=r"^fake: no complete response within 0\.2s$"):
        await _complete(fake, first_byte=5, total=0.2)


async def test_a_head_in_time_then_the_answer(fake: FakeUpstream) -> None:
    # A slow head within both deadlines: the call completes (the timer then bounds the body).
    fake.script(Fault("slow_first_byte", delay=0.15))
    await _complete(fake, first_byte=0.2, total=5)
