"""Build providers from configuration: each ``providers[].type`` is a ``ProviderType`` of the
plugins' ``Registry`` (ccrouter's own in ``ccrouter.builtins.providers``), no string dispatch chains.

A provider with several credentials (``api_key`` plus ``api_keys``) opens one ``Provider`` per
credential, sharing one connection pool; dispatch picks the credential (``open_pools``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import aiohttp

from ccrouter.config import ProviderConfig
from ccrouter.errors import ConfigError
from ccrouter.providers.base import Provider, ProviderType, WireAdapter
from ccrouter.providers.http import HttpProvider, new_session
from ccrouter.resilience.live import credential_id
from ccrouter.transformers.apply import ProviderTransformers, TransformingAdapter, TransformingProvider

if TYPE_CHECKING:
    from ccrouter.plugins import Registry

__all__ = [
    "HeadersHook",
    "ProviderPools",
    "check_providers",
    "close_pools",
    "open_pools",
    "open_provider",
    "open_providers",
]

# (provider, credential id, model, response headers): where announced rate limits go.
HeadersHook = Callable[[str, str, str, Mapping[str, str]], None]
# provider name -> credential id -> the provider using that credential, in configuration order.
ProviderPools = dict[str, dict[str, Provider]]


def check_providers(configs: Sequence[ProviderConfig], registry: Registry) -> None:
    """Every ``providers[].type`` (and ``vendor``) names something registered: the same check the
    config file gets when it is loaded, for settings built any other way."""
    for index, config in enumerate(configs):
        problem = registry.type_problem(config.type)
        if problem is not None:
            raise ConfigError(f"providers[{index}].type: {problem} (got {config.type!r})")
        problem = registry.vendor_problem(config.type, config.vendor)
        if problem is not None:
            raise ConfigError(f"providers[{index}]: {problem}")


def _type(config: ProviderConfig, registry: Registry) -> ProviderType:
    found = registry.providers.get(config.type)
    if found is None:
        raise ConfigError(f"provider {config.name!r}: {registry.type_problem(config.type)}")
    return found


async def open_provider(config: ProviderConfig, registry: Registry) -> Provider:
    """One provider, with its first credential."""
    kind = _type(config, registry)
    if kind.opener is not None:
        return await kind.opener(config, registry)
    assert kind.adapter is not None  # ProviderType guarantees one of the two
    auth = kind.auth(config) if kind.auth is not None else None
    return HttpProvider(config, kind.adapter(config, registry), new_session(config), auth=auth)


async def open_providers(configs: list[ProviderConfig], registry: Registry) -> dict[str, Provider]:
    """Open every configured provider (its first credential); on failure, close the ones opened."""
    pools = await open_pools(configs, registry)
    return {name: next(iter(pool.values())) for name, pool in pools.items()}


def _open_http_pool(
    config: ProviderConfig,
    kind: ProviderType,
    registry: Registry,
    on_headers: HeadersHook | None,
    transformers: ProviderTransformers | None,
) -> dict[str, Provider]:
    assert kind.adapter is not None
    session: aiohttp.ClientSession = new_session(config)
    pool: dict[str, Provider] = {}
    for index, key in enumerate(config.credentials()):
        cred = credential_id(index, key)
        keyed = config.model_copy(update={"api_key": key, "api_keys": []})
        hook = None
        if on_headers is not None:
            hook = _bind(on_headers, config.name, cred)
        adapter: WireAdapter = kind.adapter(keyed, registry)
        if transformers is not None:
            adapter = TransformingAdapter(adapter, transformers)
        auth = kind.auth(keyed) if kind.auth is not None else None
        pool[cred] = HttpProvider(keyed, adapter, session, on_headers=hook, auth=auth)
    return pool


def _bind(hook: HeadersHook, provider: str, cred: str) -> Callable[[str, Mapping[str, str]], None]:
    def bound(model: str, headers: Mapping[str, str]) -> None:
        hook(provider, cred, model, headers)

    return bound


async def open_pools(
    configs: list[ProviderConfig],
    registry: Registry,
    on_headers: HeadersHook | None = None,
    transformers: Mapping[str, ProviderTransformers] | None = None,
) -> ProviderPools:
    """Open every provider, one per credential (an opener's provider: its first credential only); on
    failure, close the ones already opened. ``transformers``: the chains of the providers that have
    any (``transformers.apply``)."""
    opened: ProviderPools = {}
    try:
        for config in configs:
            kind = _type(config, registry)
            chains = transformers.get(config.name) if transformers else None
            if kind.adapter is not None:
                opened[config.name] = _open_http_pool(config, kind, registry, on_headers, chains)
            else:
                cred = credential_id(0, config.credentials()[0])
                provider = await open_provider(config, registry)
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
