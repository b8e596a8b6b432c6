"""The Azure OpenAI provider: URLs (deployments with api-version, the v1 API), the api-key header, a
deployment's base model (dialect, catalog, price), Entra ID tokens (cached, refreshed ahead of
expiry, failures clean), against the shipped fake Azure resource."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from ccrouter.catalog import Catalog
from ccrouter.config import ProviderConfig
from ccrouter.errors import UpstreamError, UpstreamRateLimitError, UpstreamStatusError
from ccrouter.messages import Message, MessagesRequest, TextBlock
from ccrouter.pricing import PriceTable
from ccrouter.providers.azure import DEFAULT_API_VERSION, AzureAdapter, resource_base
from ccrouter.providers.azure_tokens import COGNITIVE_SERVICES_SCOPE, EntraTokens
from ccrouter.providers.http import HttpProvider, new_session
from ccrouter.testing import FakeAzureOpenAI, Fault, Reply

KEY = "azkey0123456789abcdef0123456789ab"
REQUEST = MessagesRequest(model="m", max_tokens=50, messages=[Message("user", [TextBlock("hi")])])


def _config(base_url: str = "https://res.openai.azure.com", **fields: Any) -> ProviderConfig:
    fields.setdefault("api_key", KEY)
    fields.setdefault(
        "models",
        [{"name": "prod-gpt4o", "base_model": "gpt-4o"}, {"name": "fast-o3", "base_model": "o3-mini"}],
    )
    return ProviderConfig(name="az", type="azure", base_url=base_url, **fields)


def test_an_azure_provider_needs_base_url() -> None:
    with pytest.raises(ValueError, match="needs base_url"):
        ProviderConfig(name="az", type="azure", api_key=KEY)


@pytest.mark.parametrize("bad", ["2024-10", "latest", "v2", "2024-10-21-beta"])
def test_the_api_version_is_a_date_or_v1(bad: str) -> None:
    with pytest.raises(ValueError, match="api_version"):
        _config(api_version=bad)


def test_the_resource_base_as_people_paste_it() -> None:
    for url in (
        "https://r.openai.azure.com",
        "https://r.openai.azure.com/",
        "https://r.openai.azure.com/openai",
        "https://r.openai.azure.com/openai/v1/",
    ):
        assert resource_base(url) == "https://r.openai.azure.com"


def test_deployment_urls_carry_the_api_version() -> None:
    adapter = AzureAdapter(_config())
    call = adapter.build(REQUEST, "prod-gpt4o", stream=False)
    assert call.url == (
        f"https://res.openai.azure.com/openai/deployments/prod-gpt4o/chat/completions?api-version={DEFAULT_API_VERSION}"
    )
    assert call.headers["api-key"] == KEY
    assert "Authorization" not in call.headers
    preview = AzureAdapter(_config(api_version="2025-04-01-preview"))
    assert preview.build(REQUEST, "a b/c", stream=True).url.endswith(
        "/openai/deployments/a%20b%2Fc/chat/completions?api-version=2025-04-01-preview"
    )


def test_the_v1_api_names_the_deployment_in_the_body() -> None:
    adapter = AzureAdapter(_config(api_version="v1"))
    call = adapter.build(REQUEST, "prod-gpt4o", stream=False)
    assert call.url == "https://res.openai.azure.com/openai/v1/chat/completions"
    assert orjson.loads(call.body)["model"] == "prod-gpt4o"


def test_a_deployment_speaks_its_base_model_s_dialect() -> None:
    adapter = AzureAdapter(_config())
    reasoning = orjson.loads(adapter.build(REQUEST, "fast-o3", stream=False).body)
    assert reasoning["max_completion_tokens"] == 50  # o3-mini: no max_tokens
    assert "max_tokens" not in reasoning
    chat = orjson.loads(adapter.build(REQUEST, "prod-gpt4o", stream=False).body)
    assert chat.get("max_tokens", chat.get("max_completion_tokens")) == 50


def test_capabilities_and_prices_follow_the_base_model() -> None:
    config = _config()
    catalog = Catalog.load()
    assert catalog.info(config, "prod-gpt4o") == catalog.info(_config(models=[]), "gpt-4o")
    assert catalog.lookup("prod-gpt4o") is None
    table = PriceTable.load()
    assert table.price(config, "prod-gpt4o") == table.lookup("gpt-4o")
    assert table.price(config, "prod-gpt4o") is not None


def test_an_echoed_key_is_redacted_from_errors() -> None:
    adapter = AzureAdapter(_config())
    body = orjson.dumps({"error": {"code": "401", "message": f"bad key {KEY}"}})
    message = adapter.error_message(401, body)
    assert KEY not in message
    assert "(401)" in message


# -- through the fake resource ----------------------------------------------------------------


async def _call(config: ProviderConfig, model: str = "prod-gpt4o", *, stream: bool = False, **kw: Any) -> str:
    provider = HttpProvider(config, AzureAdapter(config), new_session(), **kw)
    try:
        if not stream:
            response = await provider.complete(REQUEST, model)
            block = response.content[0]
            assert isinstance(block, TextBlock)
            return block.text
        texts = []
        async for events in provider.stream(REQUEST, model):
            texts += [getattr(getattr(event, "delta", None), "text", "") or "" for event in events]
        return "".join(texts)
    finally:
        await provider.aclose()


@pytest.mark.parametrize("stream", [False, True])
async def test_a_deployment_call_against_the_fake(stream: bool) -> None:
    async with FakeAzureOpenAI(api_key=KEY) as azure:
        azure.script(Reply(text="hello from azure"))
        assert await _call(_config(azure.url), stream=stream) == "hello from azure"
    (record,) = azure.requests
    assert record.path == "/openai/deployments/prod-gpt4o/chat/completions"
    assert record.query == {"api-version": DEFAULT_API_VERSION}
    assert record.model == "prod-gpt4o"
    assert record.headers["api-key"] == KEY


async def test_a_wrong_key_is_a_401_without_the_key() -> None:
    async with FakeAzureOpenAI(api_key="the-right-key-0000") as azure:
        with pytest.raises(UpstreamStatusError) as caught:
            await _call(_config(azure.url))
    assert caught.value.status == 401
    assert "Access denied" in caught.value.message
    assert KEY not in caught.value.message


async def test_a_429_carries_retry_after_ms() -> None:
    async with FakeAzureOpenAI(api_key=KEY) as azure:
        azure.script(Fault("status", status=429, retry_after=1.5))
        with pytest.raises(UpstreamRateLimitError) as caught:
            await _call(_config(azure.url))
    assert caught.value.retry_after == 1.5
    assert "exceeded token rate limit" in caught.value.message


# -- Entra ID tokens ---------------------------------------------------------------------------


@dataclass
class _AccessToken:
    token: str
    expires_on: int


class StaticCredential:
    """An ``AsyncTokenCredential`` handing out numbered tokens that live ``lifetime`` seconds."""

    def __init__(self, lifetime: float = 3600, fail: int = 0) -> None:
        self.lifetime = lifetime
        self.calls: list[tuple[str, ...]] = []
        self.fail = fail
        self.closed = False

    async def get_token(self, *scopes: str) -> _AccessToken:
        self.calls.append(scopes)
        await asyncio.sleep(0.01)
        if self.fail:
            self.fail -= 1
            raise ValueError("AADSTS7000215: Invalid client secret provided.\nTrace ID: 1234")
        return _AccessToken(f"entra-token-{len(self.calls)}", int(clock.now + self.lifetime))

    async def close(self) -> None:
        self.closed = True


class _Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


clock = _Clock()


async def test_entra_tokens_are_cached_shared_and_refreshed_ahead_of_expiry() -> None:
    credential = StaticCredential(lifetime=3600)
    tokens = EntraTokens("az", lambda: credential, clock=clock)
    got = await asyncio.gather(*(tokens.headers() for _ in range(10)))
    assert {h["Authorization"] for h in got} == {"Bearer entra-token-1"}
    assert credential.calls == [(COGNITIVE_SERVICES_SCOPE,)]
    clock.now += 3600 - 301  # more than five minutes left: still fresh
    assert await tokens.token() == "entra-token-1"
    clock.now += 2
    assert await tokens.token() == "entra-token-2"
    assert "entra-token" not in repr(tokens)
    await tokens.aclose()
    assert credential.closed


async def test_a_failed_refresh_keeps_a_token_with_life_then_fails_cleanly() -> None:
    credential = StaticCredential(lifetime=600)
    tokens = EntraTokens("az", lambda: credential, clock=clock)
    assert await tokens.token() == "entra-token-1"
    credential.fail = 2
    clock.now += 400  # within the refresh margin, still usable
    assert await tokens.token() == "entra-token-1"
    clock.now += 300  # expired
    with pytest.raises(UpstreamError, match=r"^az: could not get an Entra ID token: AADSTS7000215") as caught:
        await tokens.token()
    assert "Trace ID" not in caught.value.message


async def test_an_entra_token_reaches_the_fake_as_a_bearer() -> None:
    credential = StaticCredential()
    tokens = EntraTokens("az", lambda: credential, clock=clock)
    async with FakeAzureOpenAI(tokens=("entra-token-1",)) as azure:
        config = _config(azure.url, api_key=None, api_version="v1")
        assert await _call(config, stream=True, auth=tokens)
    (record,) = azure.requests
    assert record.path == "/openai/v1/chat/completions"
    assert record.headers["authorization"] == "Bearer entra-token-1"
    assert "api-key" not in record.headers
    assert credential.closed  # closed with the provider


async def test_without_azure_identity_installed_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def missing() -> StaticCredential:
        raise ImportError("No module named 'azure'")

    tokens = EntraTokens("az", missing)
    with pytest.raises(UpstreamError, match=r"needs azure-identity \(pip install 'ccrouter\[azure\]'\)"):
        await tokens.token()


async def test_a_client_secret_credential_is_built_from_the_config() -> None:
    config = _config(
        api_key=None,
        entra={"tenant_id": "tenant-1", "client_id": "client-1", "client_secret": "s3cret-value-xyz"},
    )
    tokens = EntraTokens.for_config(config)
    credential = await asyncio.to_thread(tokens._make)
    try:
        assert type(credential).__name__ == "ClientSecretCredential"
    finally:
        await credential.close()
    assert "s3cret" not in repr(config)
