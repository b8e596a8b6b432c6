"""``GET /v1/models`` in each client's shape (read by the official SDKs), ``/v1/models/{id}``, bad
parameters in the client's envelope, and a picked alias routing to its provider and model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
from gateway_support import GatewayFactory

from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream

AnthropicAt = Callable[[str], anthropic.AsyncAnthropic]
OpenAIAt = Callable[[str], openai.AsyncOpenAI]

ALIASES = [
    "claude-ccr-up-gpt-test",
    "claude-ccr-up-other-model",
    "claude-ccr-up-vendor-model-v2",
    "claude-ccr-any-free-form-1",
]


def _settings(fake_url: str, **router: Any) -> Settings:
    return Settings.model_validate(
        {
            "providers": [
                {
                    "name": "up",
                    "type": "openai",
                    "base_url": fake_url + "/v1",
                    "api_key": "sk-test-secret-key",
                    "models": ["gpt-test", "other-model", "vendor/model:v2"],
                },
                # A provider that lists no models: known by the route that names it.
                {"name": "any", "type": "openai", "base_url": fake_url + "/v1", "api_key": "sk-2"},
            ],
            "router": {"default": "up,gpt-test", "think": "any,free_form 1", **router},
        }
    )


async def test_anthropic_sdk_lists_aliases_and_pages(
    fake: FakeUpstream, gateway: GatewayFactory, anthropic_at: AnthropicAt
) -> None:
    client = anthropic_at(await gateway(_settings(fake.url)))
    page = await client.models.list()
    assert [m.id for m in page.data] == ALIASES
    assert [m.display_name for m in page.data][2] == "vendor/model:v2 (up)"
    assert all(m.type == "model" and m.created_at.year == 2025 for m in page.data)
    assert page.has_more is False
    assert page.first_id == ALIASES[0]
    assert page.last_id == ALIASES[-1]
    # One at a time, the SDK following has_more / last_id through the whole list.
    assert [m.id async for m in await client.models.list(limit=1)] == ALIASES
    after = await client.models.list(limit=2, after_id=ALIASES[0])
    assert [m.id for m in after.data] == ALIASES[1:3]
    assert after.has_more is True
    before = await client.models.list(limit=2, before_id=ALIASES[3])
    assert [m.id for m in before.data] == ALIASES[1:3]
    assert before.has_more is True
    one = await client.models.retrieve("claude-ccr-up-vendor-model-v2")
    assert one.id == "claude-ccr-up-vendor-model-v2"
    assert one.display_name == "vendor/model:v2 (up)"
    with pytest.raises(anthropic.NotFoundError) as missing:
        await client.models.retrieve("claude-ccr-nope")
    assert "claude-ccr-nope" in str(missing.value)


async def test_openai_sdk_lists_provider_model_ids(
    fake: FakeUpstream, gateway: GatewayFactory, openai_at: OpenAIAt
) -> None:
    client = openai_at(await gateway(_settings(fake.url)))
    page = await client.models.list()
    assert [(m.id, m.owned_by, m.object) for m in page.data] == [
        ("up,gpt-test", "up", "model"),
        ("up,other-model", "up", "model"),
        ("up,vendor/model:v2", "up", "model"),
        ("any,free_form 1", "any", "model"),
    ]
    found = await client.models.retrieve("claude-ccr-up-other-model")  # either kind of id
    assert (found.id, found.owned_by) == ("claude-ccr-up-other-model", "up")
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("up,missing")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=0", "limit: expected an integer from 1 to 1000"),
        ("limit=1001", "limit: expected an integer from 1 to 1000"),
        ("limit=abc", "limit: expected an integer from 1 to 1000"),
        ("limit=%C2%B2", "limit: expected an integer from 1 to 1000"),
        ("after_id=x&before_id=y", "after_id and before_id cannot be used together"),
        ("after_id=claude-ccr-nope", "after_id: no model with id 'claude-ccr-nope'"),
    ],
)
async def test_bad_parameters_are_400_in_the_clients_envelope(
    fake: FakeUpstream, gateway: GatewayFactory, query: str, message: str
) -> None:
    url = await gateway(_settings(fake.url))
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/v1/models?{query}", headers={"anthropic-version": "2023-06-01"}) as r:
            assert r.status == 400
            body = await r.json()
        assert body["type"] == "error"
        assert body["error"]["type"] == "invalid_request_error"
        assert message in body["error"]["message"]
        async with session.get(f"{url}/v1/models?{query}", headers={"authorization": "Bearer k"}) as r:
            assert r.status == 400
            body = await r.json()
        assert body["error"]["type"] == "invalid_request_error"
        assert message in body["error"]["message"]
        assert "type" not in body  # OpenAI's envelope


async def test_a_picked_alias_routes_to_its_provider_and_model(
    fake: FakeUpstream, gateway: GatewayFactory, anthropic_at: AnthropicAt
) -> None:
    client = anthropic_at(await gateway(_settings(fake.url)))
    response = await client.messages.with_raw_response.create(
        model="claude-ccr-up-vendor-model-v2",
        max_tokens=20,
        messages=[{"role": "user", "content": "hi"}],
        thinking={"type": "enabled", "budget_tokens": 1024},  # thinking alone would pick the think route
    )
    assert response.headers["x-ccrouter-scenario"] == "explicit"
    assert (response.headers["x-ccrouter-provider"], response.headers["x-ccrouter-model"]) == (
        "up",
        "vendor/model:v2",
    )
    assert fake.requests[-1].model == "vendor/model:v2"
    await client.messages.create(
        model="claude-ccr-any-free-form-1", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
    )
    assert fake.requests[-1].model == "free_form 1"
