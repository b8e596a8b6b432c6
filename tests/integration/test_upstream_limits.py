"""Oversized upstream replies end the call with a clean upstream error once a limit is crossed (a
502 in the client's envelope before the first byte, the SSE error event after it), the gateway
never holds more than the limit, and it keeps answering other requests meanwhile."""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from typing import Any

import aiohttp
import orjson
from gateway_support import GatewayFactory

from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream, Fault, Reply

MIB = 1024 * 1024
HUGE = 200 * MIB
BODY = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
# What may be in flight between the fake and the gateway when the gateway stops reading (socket
# buffers on loopback reach a few MiB): far below the 200 MiB the fake would send.
SLACK = 16 * MIB


def _settings(fake: FakeUpstream, wire: str = "anthropic", **limits: int) -> Settings:
    base, model = (fake.url, "claude-sonnet-4-6") if wire == "anthropic" else (fake.url + "/v1", "gpt-x")
    return Settings.model_validate(
        {
            "providers": [
                {
                    "name": "up",
                    "type": wire,
                    "base_url": base,
                    "api_key": "sk-test-secret-key",
                    "models": [model],
                    "limits": {"max_body_bytes": MIB, "max_frame_bytes": MIB} | limits,
                }
            ],
            "router": {"default": f"up,{model}"},
            "routing": {"auto_fallback": "off"},
        }
    )


async def _post(url: str, body: dict[str, Any], path: str = "/v1/messages") -> tuple[int, bytes]:
    async with (
        asyncio.timeout(20),
        aiohttp.ClientSession() as session,
        session.post(url + path, json=body) as response,
    ):
        return response.status, await response.read()


def _anthropic_error(raw: bytes) -> str:
    body = orjson.loads(raw)
    assert body["type"] == "error"
    assert body["error"]["type"] == "api_error"
    message: str = body["error"]["message"]
    return message


async def test_a_huge_body_is_cut_at_max_body_bytes(gateway: GatewayFactory, fake: FakeUpstream) -> None:
    url = await gateway(_settings(fake))
    fake.script(Fault("huge_body", size=HUGE))
    status, raw = await _post(url, BODY)
    assert status == 502
    assert _anthropic_error(raw) == "up: response body larger than 1048576 bytes (limits.max_body_bytes)"
    assert fake.requests[0].sent < MIB + SLACK


async def test_the_openai_front_gets_the_limit_error_in_its_envelope(
    gateway: GatewayFactory, fake: FakeUpstream
) -> None:
    url = await gateway(_settings(fake))
    fake.script(Fault("huge_body", size=HUGE))
    body = {"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "hi"}]}
    status, raw = await _post(url, body, "/v1/chat/completions")
    assert status == 502
    assert "larger than 1048576 bytes" in orjson.loads(raw)["error"]["message"]


async def test_a_gzip_bomb_is_inflated_only_up_to_the_limit(
    gateway: GatewayFactory, fake: FakeUpstream
) -> None:
    url = await gateway(_settings(fake))
    fake.script(Fault("gzip_bomb", size=HUGE))
    tracemalloc.start()
    try:
        status, raw = await _post(url, BODY)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Everything this process allocated meanwhile (gateway, fake and client): nowhere near 200 MiB.
    assert peak < 16 * MIB
    assert status == 502
    assert "larger than 1048576 bytes" in _anthropic_error(raw)


async def test_an_endless_sse_line_before_the_first_byte_answers_502(
    gateway: GatewayFactory, fake: FakeUpstream
) -> None:
    url = await gateway(_settings(fake))
    fake.script(Fault("endless_line", size=HUGE))
    started = time.perf_counter()
    status, raw = await _post(url, {**BODY, "stream": True})
    assert status == 502
    assert _anthropic_error(raw) == "up: stream event larger than 1048576 bytes (limits.max_frame_bytes)"
    assert fake.requests[0].sent < MIB + SLACK
    assert time.perf_counter() - started < 5


async def test_an_endless_sse_line_after_the_first_byte_ends_with_the_error_event(
    gateway: GatewayFactory, fake: FakeUpstream
) -> None:
    url = await gateway(_settings(fake, "openai"))
    fake.script(Fault("endless_line", size=HUGE, reply=Reply(text="hello there"), after_chunks=2))
    status, raw = await _post(url, {**BODY, "stream": True})
    assert status == 200
    text = raw.decode()
    assert text.startswith("event: message_start")
    assert text.rstrip().endswith('limits.max_frame_bytes)"}}')
    assert "event: error" in text
    assert fake.requests[0].sent < MIB + SLACK


async def test_the_gateway_answers_others_while_an_endless_line_streams_in(
    gateway: GatewayFactory, fake: FakeUpstream
) -> None:
    # A limit high enough that the bad stream is still being read when the second request comes.
    url = await gateway(_settings(fake, max_frame_bytes=96 * MIB))
    fake.script(Fault("endless_line", size=HUGE))
    bad = asyncio.create_task(_post(url, {**BODY, "stream": True}))
    for _ in range(2000):  # until the bad stream is well under way (20 s at most)
        if fake.requests and fake.requests[0].sent >= 32 * MIB:
            break
        await asyncio.sleep(0.01)
    started = time.perf_counter()
    status, _ = await _post(url, BODY)
    elapsed = time.perf_counter() - started
    assert status == 200
    assert fake.requests[0].sent < 96 * MIB  # still in progress when the good one was answered
    assert elapsed < 0.5
    status, raw = await bad
    assert status == 502
    assert "larger than 100663296 bytes" in _anthropic_error(raw)
