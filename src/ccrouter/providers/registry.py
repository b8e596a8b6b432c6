"""Build providers from configuration: one registry entry per wire format, no string dispatch chains."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ccrouter.config import ProviderConfig
from ccrouter.providers.anthropic import AnthropicAdapter
from ccrouter.providers.base import Provider, WireAdapter
from ccrouter.providers.gemini import GeminiAdapter
from ccrouter.providers.http import HttpProvider, new_session
from ccrouter.providers.openai import OpenAIAdapter
from ccrouter.providers.simulated import open_simulated

__all__ = ["ADAPTERS", "open_provider", "open_providers"]

ADAPTERS: dict[str, Callable[[ProviderConfig], WireAdapter]] = {
    "anthropic": AnthropicAdapter,
    "openai": OpenAIAdapter,
    "gemini": GeminiAdapter,
}


async def _open_http(config: ProviderConfig) -> Provider:
    return HttpProvider(config, ADAPTERS[config.type](config), new_session())


_OPENERS: dict[str, Callable[[ProviderConfig], Awaitable[Provider]]] = {
    **{wire: _open_http for wire in ADAPTERS},
    "simulated": open_simulated,
}


async def open_provider(config: ProviderConfig) -> Provider:
    return await _OPENERS[config.type](config)


async def open_providers(configs: list[ProviderConfig]) -> dict[str, Provider]:
    """Open every configured provider; on failure, close the ones already opened."""
    opened: dict[str, Provider] = {}
    try:
        for config in configs:
            opened[config.name] = await open_provider(config)
    except BaseException:
        for provider in opened.values():
            await provider.aclose()
        raise
    return opened
