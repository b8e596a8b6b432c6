"""Azure OpenAI: OpenAI's chat completions on an Azure resource, through the OpenAI codec.

Two URL shapes (https://learn.microsoft.com/en-us/azure/ai-foundry/openai/reference and
.../api-version-lifecycle):

- deployments (``api_version: YYYY-MM-DD``, default ``DEFAULT_API_VERSION``, the latest GA data-plane
  inference version): ``POST {base_url}/openai/deployments/{deployment}/chat/completions
  ?api-version=...``; the route's model is the deployment name.
- the v1 API (``api_version: v1``): ``POST {base_url}/openai/v1/chat/completions``, the deployment
  named by the body's ``model``, no api-version.

Auth is the resource key as ``api-key``, or without ``api_key`` a Microsoft Entra ID token
(``Authorization: Bearer``, scope ``https://cognitiveservices.azure.com/.default``) from
``ccrouter.providers.azure_tokens``. A deployment's ``base_model`` (``models[].base_model``) names the
model it serves: its capabilities, prices and OpenAI dialect (o-series, gpt-5) follow that name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import quote

from ccrouter.config import ProviderConfig
from ccrouter.providers.base import CallAuth
from ccrouter.providers.openai import OpenAIAdapter
from ccrouter.providers.openai_vendors import Vendor

if TYPE_CHECKING:
    from ccrouter.plugins import Registry

__all__ = ["DEFAULT_API_VERSION", "AzureAdapter", "azure_adapter", "azure_auth", "resource_base"]

# The latest GA version of the data-plane inference API (2024-10-21), as Microsoft's REST reference
# lists it; newer features need a -preview version or the v1 API.
DEFAULT_API_VERSION = "2024-10-21"


def resource_base(base_url: str) -> str:
    """The resource's root from ``base_url`` as people paste it (with ``/openai`` or ``/openai/v1``)."""
    return base_url.rstrip("/").removesuffix("/v1").removesuffix("/openai")


class AzureAdapter(OpenAIAdapter):
    """``WireAdapter`` for Azure OpenAI chat completions (deployments or the v1 API)."""

    def __init__(self, config: ProviderConfig, vendors: Mapping[str, Vendor] | None = None) -> None:
        assert config.base_url is not None  # ProviderConfig requires it for type: azure
        self._base = resource_base(config.base_url)
        self._version = config.api_version or DEFAULT_API_VERSION
        self._v1 = f"{self._base}/openai/v1/chat/completions"
        # The OpenAI vendor profile: its dialect rules (max_completion_tokens for reasoning models).
        super().__init__(config.model_copy(update={"vendor": "openai"}), vendors)
        self._urls: dict[str, str] = {}

    def auth_headers(self) -> dict[str, str]:
        # The resource key; without one an Entra token is added per call (``azure_auth``).
        return {"api-key": self._api_key} if self._api_key else {}

    def url(self, model: str) -> str:
        if self._version == "v1":
            return self._v1
        found = self._urls.get(model)
        if found is None:
            deployment = quote(model, safe="-._~")
            found = (
                f"{self._base}/openai/deployments/{deployment}/chat/completions?api-version={self._version}"
            )
            if len(self._urls) < 1024:  # names come from the config and clients: bounded anyway
                self._urls[model] = found
        return found


def azure_adapter(config: ProviderConfig, registry: Registry) -> AzureAdapter:
    return AzureAdapter(config, registry.vendors)


def azure_auth(config: ProviderConfig) -> CallAuth | None:
    """Entra ID tokens for a provider without ``api_key``; None with one (the ``api-key`` header)."""
    if config.api_key is not None:
        return None
    from ccrouter.providers.azure_tokens import EntraTokens

    return EntraTokens.for_config(config)
