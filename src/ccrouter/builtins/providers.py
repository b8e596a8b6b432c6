"""The built-in provider types: the wire formats spoken over HTTP, the simulated provider and Vertex."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from ccrouter.config import ProviderConfig
from ccrouter.hookspecs import hookimpl
from ccrouter.providers.anthropic import AnthropicAdapter
from ccrouter.providers.azure import azure_adapter, azure_auth
from ccrouter.providers.base import Provider, ProviderType
from ccrouter.providers.gemini import VENDOR_NAMES, GeminiAdapter
from ccrouter.providers.openai import OpenAIAdapter
from ccrouter.providers.openai_responses import OpenAIResponsesAdapter
from ccrouter.providers.simulated import open_simulated

if TYPE_CHECKING:
    from ccrouter.plugins import Registry

__all__ = ["register_providers"]


def _anthropic(config: ProviderConfig, registry: Registry) -> AnthropicAdapter:
    return AnthropicAdapter(config)


def _openai(config: ProviderConfig, registry: Registry) -> OpenAIAdapter:
    return OpenAIAdapter(config, registry.vendors)


def _openai_responses(config: ProviderConfig, registry: Registry) -> OpenAIResponsesAdapter:
    return OpenAIResponsesAdapter(config)


def _gemini(config: ProviderConfig, registry: Registry) -> GeminiAdapter:
    return GeminiAdapter(config)


async def _simulated(config: ProviderConfig, registry: Registry) -> Provider:
    return await open_simulated(config)


async def _vertex(config: ProviderConfig, registry: Registry) -> Provider:
    # Imported when a vertex provider opens, off the loop (an import reads files): google-auth (and
    # requests) stay out of every other gateway.
    vertex = await asyncio.to_thread(importlib.import_module, "ccrouter.providers.vertex")
    provider: Provider = await vertex.open_vertex(config, registry)
    return provider


async def _bedrock(config: ProviderConfig, registry: Registry) -> Provider:
    # Imported when a bedrock provider opens, off the loop: botocore stays out of every other gateway.
    bedrock = await asyncio.to_thread(importlib.import_module, "ccrouter.providers.bedrock")
    provider: Provider = await bedrock.open_bedrock(config, registry)
    return provider


@hookimpl
def register_providers(register: Callable[[ProviderType], None]) -> None:
    register(ProviderType("anthropic", adapter=_anthropic, description="Anthropic Messages API"))
    register(
        ProviderType("openai", adapter=_openai, description="OpenAI chat completions", vendor_profiles=True)
    )
    register(
        ProviderType(
            "gemini", adapter=_gemini, description="Google Gemini generateContent", vendors=VENDOR_NAMES
        )
    )
    register(
        ProviderType("simulated", opener=_simulated, description="the shipped fake upstream, in-process")
    )
    # -- issue 16, Google Vertex AI: Claude (rawPredict) and Gemini models with refreshed Google tokens.
    register(ProviderType("vertex", opener=_vertex, description="Google Vertex AI (Claude and Gemini)"))
    # -- issue 16, AWS Bedrock: Claude (InvokeModel) and other models (Converse), signed with SigV4.
    register(ProviderType("bedrock", opener=_bedrock, description="AWS Bedrock (Claude and Converse models)"))
    # -- issue 16, Azure OpenAI: deployments or the v1 API, an api-key or Entra ID tokens.
    register(
        ProviderType(
            "azure", adapter=azure_adapter, auth=azure_auth, description="Azure OpenAI chat completions"
        )
    )
    # -- issue 16, the OpenAI Responses API upstream: models OpenAI serves on /v1/responses only.
    register(ProviderType("openai_responses", adapter=_openai_responses, description="OpenAI Responses API"))
