"""``probe_provider`` on each wire format against the fake upstream: the models list with the key,
a rejected key, a closed port, and the one-token message when there is no models list."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from ccrouter.config import ProviderConfig, registry_context
from ccrouter.plugins import Registry, load_plugins
from ccrouter.probe import probe_provider
from ccrouter.testing import FakeUpstream

KEY = "sk-probe-fake-key-0123456789"


def config(**fields: Any) -> ProviderConfig:
    registry = Registry.build(load_plugins([], entry_points=False))
    return ProviderConfig.model_validate(
        {"name": "p", "api_key": KEY, "models": ["m-1"], **fields}, context=registry_context(registry)
    )


@pytest.fixture
def registry() -> Registry:
    return Registry.build(load_plugins([], entry_points=False))


@pytest.mark.parametrize(
    ("wire", "suffix", "header", "value", "first"),
    [
        ("anthropic", "", "x-api-key", KEY, "claude"),
        ("openai", "/v1", "authorization", f"Bearer {KEY}", "gpt-4o"),
        ("gemini", "/v1beta", "x-goog-api-key", KEY, "gemini"),
        ("openai_responses", "/v1", "authorization", f"Bearer {KEY}", "gpt-4o"),
    ],
)
async def test_models_list_with_the_key_then_a_rejected_key(
    registry: Registry, wire: str, suffix: str, header: str, value: str, first: str
) -> None:
    async with FakeUpstream(api_key=KEY) as fake:
        good = await probe_provider(config(type=wire, base_url=fake.url + suffix), registry, limit_s=5)
        assert good.ok, good.detail
        assert good.models
        assert good.models[0].startswith(first)
        (request,) = fake.requests
        assert request.method == "GET"
        assert request.headers[header] == value
        bad = await probe_provider(
            config(type=wire, base_url=fake.url + suffix, api_key="sk-not-the-right-key-987654"),
            registry,
            limit_s=5,
        )
    assert bad.outcome == "key_rejected"
    assert "HTTP 401" in bad.detail
    assert "sk-not-the-right" not in bad.detail


async def test_a_closed_port_is_unreachable(registry: Registry) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = await probe_provider(
        config(type="openai", base_url=f"http://127.0.0.1:{port}/v1"), registry, limit_s=2
    )
    assert result.outcome == "unreachable"
    assert result.detail == "unreachable: Connection refused"


async def test_without_a_models_list_a_one_token_message_is_sent(registry: Registry) -> None:
    async with FakeUpstream() as fake:
        # /elsewhere/models answers 404: the probe falls back to a message, which answers 404 too.
        result = await probe_provider(
            config(type="openai", base_url=f"{fake.url}/elsewhere"), registry, limit_s=5
        )
        assert result.outcome == "error"
        assert "HTTP 404" in result.detail
    async with FakeUpstream() as fake:
        # Vertex AI has no models list of this shape: the one-token message answers for it.
        result = await probe_provider(
            config(type="gemini", vendor="vertex", base_url=f"{fake.url}/v1beta"), registry, limit_s=5
        )
        assert result.ok, result.detail
        assert result.detail == "answered a one-token message (m-1)"
        (request,) = fake.requests
        assert request.method == "POST"
        assert request.body is not None
        assert request.body["generationConfig"]["maxOutputTokens"] == 1
