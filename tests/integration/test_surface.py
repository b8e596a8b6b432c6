"""The rest of the HTTP surface: health, root, models, count_tokens, client auth, simulated provider."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import anthropic
import orjson
import pytest
from gateway_support import GatewayFactory, settings_for

from ccrouter.codecs.anthropic.body import decode_request_body
from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream
from ccrouter.tokens import TokenCounter

AnthropicAt = Callable[[str], anthropic.AsyncAnthropic]

SIMULATED = Settings.model_validate(
    {
        "providers": [{"name": "simulated", "type": "simulated", "models": ["sim-1"]}],
        "router": {"default": "simulated,sim-1"},
    }
)


async def test_health_root_and_head(fake: FakeUpstream, gateway: GatewayFactory) -> None:
    url = await gateway(settings_for(fake.url, "openai"))
    async with aiohttp.ClientSession() as session:
        async with session.get(url + "/health") as response:
            health = await response.json()
        assert health["status"] == "ok"
        assert health["providers"][0]["name"] == "up"
        assert "sk-test-secret-key" not in orjson.dumps(health).decode()
        async with session.head(url + "/") as response:
            assert response.status == 200
        async with session.get(url + "/") as response:
            assert (await response.json())["name"] == "ccrouter"


async def test_models_lists_the_picker_aliases(
    fake: FakeUpstream, gateway: GatewayFactory, anthropic_at: AnthropicAt
) -> None:
    client = anthropic_at(await gateway(settings_for(fake.url, "openai")))
    page = await client.models.list()
    assert [model.id for model in page.data] == ["claude-ccr-up-gpt-test", "claude-ccr-up-other-model"]


async def test_count_tokens(fake: FakeUpstream, gateway: GatewayFactory, anthropic_at: AnthropicAt) -> None:
    client = anthropic_at(await gateway(settings_for(fake.url, "openai")))
    small = await client.messages.count_tokens(model="m", messages=[{"role": "user", "content": "hello"}])
    big = await client.messages.count_tokens(
        model="m", messages=[{"role": "user", "content": "hello " * 500}]
    )
    assert 0 < small.input_tokens < 20
    assert big.input_tokens > 400


async def test_count_tokens_is_exact_after_routing_only_estimated_the_request(
    fake: FakeUpstream, gateway: GatewayFactory, anthropic_at: AnthropicAt
) -> None:
    # Far below the long-context threshold, routing bounds the count without encoding the text.
    client = anthropic_at(await gateway(settings_for(fake.url, "openai", long_context="up,other-model")))
    messages: list[Any] = [{"role": "user", "content": "hello " * 500 + "naïve café 🚀 " * 20}]
    await client.messages.create(model="m", max_tokens=5, messages=messages)
    counted = await client.messages.count_tokens(model="m", messages=messages)
    body = orjson.dumps({"model": "m", "messages": messages})
    assert counted.input_tokens == TokenCounter().count_request(
        decode_request_body(body, require_max_tokens=False)
    )


async def test_client_auth_required_when_configured(fake: FakeUpstream, gateway: GatewayFactory) -> None:
    url = await gateway(settings_for(fake.url, "openai", server={"api_keys": ["client-secret"]}))
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as session:
        async with session.post(url + "/v1/messages", json=body) as response:
            assert response.status == 401
            assert (await response.json())["error"]["type"] == "authentication_error"
        async with session.post(url + "/v1/messages", json=body, headers={"x-api-key": "wrong"}) as response:
            assert response.status == 401
        async with session.post(url + "/v1/messages", json=body, headers={"x-api-key": "client-secret"}) as r:
            assert r.status == 200
        headers = {"authorization": "Bearer client-secret"}
        async with session.post(url + "/v1/messages", json=body, headers=headers) as response:
            assert response.status == 200
        async with session.get(url + "/health") as response:
            assert response.status == 200


def test_non_loopback_host_needs_client_keys() -> None:
    with pytest.raises(ValueError, match="api_keys"):
        Settings.model_validate({**SIMULATED.model_dump(), "server": {"host": "0.0.0.0"}})


async def test_simulated_provider_answers_offline(gateway: GatewayFactory) -> None:
    url = await gateway(SIMULATED, simulated=True)
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hello"}],
    }
    async with aiohttp.ClientSession() as session, session.post(url + "/v1/messages", json=body) as response:
        assert response.status == 200
        assert response.headers["x-ccrouter-simulated"].startswith("true")
        message = await response.json()
    assert message["type"] == "message"
    assert "simulated" in message["content"][0]["text"].lower()
