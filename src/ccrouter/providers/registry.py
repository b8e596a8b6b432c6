"""Build providers from configuration: one registry entry per wire format, no string dispatch chains.

A provider with several credentials (``api_key`` plus ``api_keys``) opens one ``Provider`` per
credential, sharing one connection pool; dispatch picks the credential (``open_pools``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import aiohttp

from ccrouter.config import ProviderConfig
from ccrouter.providers.anthropic import AnthropicAdapter
from ccrouter.providers.base import Provider, WireAdapter
from ccrouter.providers.gemini import GeminiAdapter
from ccrouter.providers.http import HttpProvider, new_session
from ccrouter.providers.openai import OpenAIAdapter
from ccrouter.providers.simulated import open_simulated
from ccrouter.resilience.live import credential_id
from ccrouter.transformers.apply import ProviderTransformers, TransformingAdapter, TransformingProvider

__all__ = [
    "ADAPTERS",
    "HeadersHook",
    "ProviderPools",
    "close_pools",
    "open_pools",
    "open_provider",
    "open_providers",
]

ADAPTERS: dict[str, Callable[[ProviderConfig], WireAdapter]] = {
    "anthropic": AnthropicAdapter,
    "openai": OpenAIAdapter,
    "gemini": GeminiAdapter,
}

# (provider, credential id, model, response headers): where announced rate limits go.
HeadersHook = Callable[[str, str, str, Mapping[str, str]], None]
# provider name -> credential id -> the provider using that credential, in configuration order.
ProviderPools = dict[str, dict[str, Provider]]


async def _open_http(config: ProviderConfig) -> Provider:
    return HttpProvider(config, ADAPTERS[config.type](config), new_session())


_OPENERS: dict[str, Callable[[ProviderConfig], Awaitable[Provider]]] = {
    **{wire: _open_http for wire in ADAPTERS},
    "simulated": open_simulated,
}


async def open_provider(config: ProviderConfig) -> Provider:
    return await _OPENERS[config.type](config)


async def open_providers(configs: list[ProviderConfig]) -> dict[str, Provider]:
    """Open every configured provider (its first credential); on failure, close the ones opened."""
    pools = await open_pools(configs)
    return {name: next(iter(pool.values())) for name, pool in pools.items()}


def _open_http_pool(
    config: ProviderConfig, on_headers: HeadersHook | None, transformers: ProviderTransformers | None
) -> dict[str, Provider]:
    session: aiohttp.ClientSession = new_session()
    pool: dict[str, Provider] = {}
    for index, key in enumerate(config.credentials()):
        cred = credential_id(index, key)
        keyed = config.model_copy(update={"api_key": key, "api_keys": []})
        hook = None
        if on_headers is not None:
            hook = _bind(on_headers, config.name, cred)
        adapter: WireAdapter = ADAPTERS[config.type](keyed)
        if transformers is not None:
            adapter = TransformingAdapter(adapter, transformers)
        pool[cred] = HttpProvider(keyed, adapter, session, on_headers=hook)
    return pool


def _bind(hook: HeadersHook, provider: str, cred: str) -> Callable[[str, Mapping[str, str]], None]:
    def bound(model: str, headers: Mapping[str, str]) -> None:
        hook(provider, cred, model, headers)

    return bound


async def open_pools(
    configs: list[ProviderConfig],
    on_headers: HeadersHook | None = None,
    transformers: Mapping[str, ProviderTransformers] | None = None,
) -> ProviderPools:
    """Open every provider, one per credential; on failure, close the ones already opened.
    ``transformers``: the chains of the providers that have any (``transformers.apply``)."""
    opened: ProviderPools = {}
    try:
        for config in configs:
            chains = transformers.get(config.name) if transformers else None
            if config.type in ADAPTERS:
                opened[config.name] = _open_http_pool(config, on_headers, chains)
            else:
                cred = credential_id(0, config.credentials()[0])
                provider = await open_provider(config)
                opened[config.name] = {cred: provider}  # closed below if wrapping it fails
                if chains is not None:
                    opened[config.name] = {cred: TransformingProvider.wrap(provider, chains)}
    except BaseException:
        await close_pools(opened)
        raise
    return opened


async def close_pools(pools: ProviderPools) -> None:
    for pool in pools.values():
        for provider in pool.values():
            await provider.aclose()
