"""The built-in provider types: the three wire formats spoken over HTTP, and the simulated provider."""

from __future__ import annotations

from collections.abc import Callable

from ccrouter.hookspecs import hookimpl
from ccrouter.providers.anthropic import AnthropicAdapter
from ccrouter.providers.base import ProviderType
from ccrouter.providers.gemini import GeminiAdapter
from ccrouter.providers.openai import OpenAIAdapter
from ccrouter.providers.simulated import open_simulated

__all__ = ["register_providers"]


@hookimpl
def register_providers(register: Callable[[ProviderType], None]) -> None:
    register(ProviderType("anthropic", adapter=AnthropicAdapter, description="Anthropic Messages API"))
    register(ProviderType("openai", adapter=OpenAIAdapter, description="OpenAI chat completions"))
    register(ProviderType("gemini", adapter=GeminiAdapter, description="Google Gemini generateContent"))
    register(
        ProviderType("simulated", opener=open_simulated, description="the shipped fake upstream, in-process")
    )
