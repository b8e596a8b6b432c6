"""A provider answering a redirect is an upstream error: the gateway never follows it, so neither the
provider key nor the prompt reaches the redirect target; the client gets a 502 naming the provider in
its own envelope, and the next configured candidate (if any) serves instead."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from gateway_support import WIRES, GatewayFactory

from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream, Fault

KEY = "sk-test-secret-key-0123456789"
BODY = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "secret"}]}


@pytest.fixture
async def elsewhere() -> AsyncIterator[FakeUpstream]:
    """The redirect target, on another port: it must never hear from the gateway."""
    async with FakeUpstream() as upstream:
        yield upstream


def _settings(fake: FakeUpstream, wire: str, fallback: FakeUpstream | None = None) -> Settings:
    spec = WIRES[wire]
    providers: list[dict[str, Any]] = [
        {
            "name": "up",
            "type": spec["type"],
            "base_url": fake.url + spec["suffix"],
            "api_key": KEY,
            "models": [spec["model"]],
        }
    ]
    router: dict[str, Any] = {"default": f"up,{spec['model']}"}
    if fallback is not None:
        providers.append(
            {"name": "next", "type": "anthropic", "base_url": fallback.url, "models": ["claude-sonnet-4-6"]}
        )
        router["fallback"] = {"default": ["next,claude-sonnet-4-6"]}
    return Settings.model_validate(
        {"providers": providers, "router": router, "routing": {"auto_fallback": "off"}}
    )


async def _post(url: str, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.post(url + path, json=body) as response:
        return response.status, await response.read()


@pytest.mark.parametrize("wire", ["anthropic", "openai", "gemini"])
@pytest.mark.parametrize("status", [302, 307])
@pytest.mark.parametrize("stream", [False, True])
async def test_a_redirect_is_not_followed_and_answers_502(
    gateway: GatewayFactory,
    fake: FakeUpstream,
    elsewhere: FakeUpstream,
    wire: str,
    status: int,
    stream: bool,
) -> None:
    url = await gateway(_settings(fake, wire))
    fake.script(Fault("redirect", status=status, location=elsewhere.url + "/v1/messages"))
    got, raw = await _post(url, "/v1/messages", {**BODY, "stream": stream})
    assert elsewhere.requests == []
    assert got == 502
    body = orjson.loads(raw)
    assert body["type"] == "error"
    assert body["error"]["type"] == "api_error"
    assert body["error"]["message"].startswith(f"up: answered {status} (a redirect)")
    assert KEY not in raw.decode()


async def test_the_openai_front_gets_the_502_in_its_envelope(
    gateway: GatewayFactory, fake: FakeUpstream, elsewhere: FakeUpstream
) -> None:
    url = await gateway(_settings(fake, "anthropic"))
    fake.script(Fault("redirect", status=307, location=elsewhere.url + "/v1/messages"))
    body = {"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "secret"}]}
    got, raw = await _post(url, "/v1/chat/completions", body)
    assert elsewhere.requests == []
    assert got == 502
    assert orjson.loads(raw)["error"]["message"].startswith("up: answered 307 (a redirect)")


async def test_a_redirect_moves_on_to_the_next_configured_candidate(
    gateway: GatewayFactory, fake: FakeUpstream, elsewhere: FakeUpstream
) -> None:
    async with FakeUpstream() as second:
        url = await gateway(_settings(fake, "anthropic", fallback=second))
        fake.script(Fault("redirect", status=302, location=elsewhere.url + "/v1/messages"))
        got, _ = await _post(url, "/v1/messages", BODY)
        assert got == 200
        assert len(second.requests) == 1
    assert elsewhere.requests == []
