"""Vendor profiles for OpenAI-compatible providers: base URL, auth headers, per-model ``Dialect``.

One registry entry per vendor; the codec stays per wire format and a vendor only adds its quirks.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ccrouter.codecs.openai.dialect import Dialect
from ccrouter.config import ProviderConfig
from ccrouter.errors import ConfigError

__all__ = ["VENDORS", "Vendor", "vendor_for"]

# OpenAI reasoning models (o1, o3-mini, o4-mini, gpt-5, gpt-5.1...): max_completion_tokens only, no
# temperature/top_p/stop (400 "Unsupported parameter"). gpt-5-chat-* is the non-reasoning variant.
_REASONING_MODEL = re.compile(r"^(o\d|gpt-5)(?!.*-chat)")
_PLAIN = Dialect()


def _base_model(model: str) -> str:
    """``openai/o3`` (GitHub Models, OpenRouter) -> ``o3``."""
    return model.rsplit("/", 1)[-1].lower()


def _openai_dialect(model: str) -> Dialect:
    if _REASONING_MODEL.match(_base_model(model)):
        return Dialect(max_tokens_field="max_completion_tokens", drop_sampling=True, drop_stop=True)
    # Non-reasoning models reject reasoning_effort outright.
    return Dialect(max_tokens_field="max_completion_tokens", reasoning_style="none")


def _github_dialect(model: str) -> Dialect:
    if _REASONING_MODEL.match(_base_model(model)):
        return _openai_dialect(model)
    return Dialect(reasoning_style="none")  # Llama, Phi, Mistral... behind Azure AI Inference


def _deepseek_dialect(model: str) -> Dialect:
    # deepseek-chat allows 8K output tokens, deepseek-reasoner 64K (api-docs.deepseek.com, "Models").
    cap = 65536 if "reasoner" in model else 8192
    return Dialect(max_tokens_cap=cap, echo_reasoning_content=True, reasoning_style="none")


# Groq validates tool schemas strictly. (cache_control is never sent: keep_cache_control is off.)
_GROQ_STRIP = frozenset({"$schema", "$id", "$comment"})


def _groq_dialect(model: str) -> Dialect:
    # Only gpt-oss takes low/medium/high; other Groq models answer 400 to reasoning_effort.
    if "gpt-oss" in model:
        return Dialect(strip_schema_keys=_GROQ_STRIP)
    return Dialect(strip_schema_keys=_GROQ_STRIP, reasoning_style="none")


def _openrouter_dialect(model: str) -> Dialect:
    # OpenRouter passes cache_control through to Anthropic models only (openrouter.ai/docs prompt caching).
    claude = model.startswith("anthropic/") or "claude" in model
    return Dialect(reasoning_style="openrouter", keep_cache_control=claude)


def _plain_dialect(model: str) -> Dialect:
    return _PLAIN


@dataclass(frozen=True, slots=True)
class Vendor:
    name: str
    base_url: str
    dialect_for: Callable[[str], Dialect] = _plain_dialect
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    needs_key: bool = True

    def headers(self, api_key: str | None) -> dict[str, str]:
        headers = dict(self.extra_headers)
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        return headers

    def dialect(self, model: str) -> Dialect:
        return self.dialect_for(model)


VENDORS: dict[str, Vendor] = {
    vendor.name: vendor
    for vendor in (
        Vendor("openai", "https://api.openai.com/v1", _openai_dialect),
        Vendor("deepseek", "https://api.deepseek.com/v1", _deepseek_dialect),
        Vendor("groq", "https://api.groq.com/openai/v1", _groq_dialect),
        Vendor(
            "openrouter",
            "https://openrouter.ai/api/v1",
            _openrouter_dialect,
            # App attribution (openrouter.ai/docs/api-reference/overview#headers). The project has no
            # public site to name as HTTP-Referer; set one in the provider's `headers` if you want it.
            {"X-Title": "ccrouter"},
        ),
        Vendor("ollama", "http://localhost:11434/v1", needs_key=False),
        Vendor(
            "github",
            "https://models.github.ai/inference",
            _github_dialect,
            {"X-GitHub-Api-Version": "2022-11-28"},
        ),
        Vendor("generic", ""),
    )
}

_HOSTS = {
    "api.openai.com": "openai",
    "api.deepseek.com": "deepseek",
    "api.groq.com": "groq",
    "openrouter.ai": "openrouter",
    "models.github.ai": "github",
    "models.inference.ai.azure.com": "github",
}


def _guess(config: ProviderConfig) -> str:
    """Vendor name from the base_url host (Ollama: its default port), else from the provider name."""
    if config.base_url:
        parts = urlsplit(config.base_url)
        host = (parts.hostname or "").lower()
        if host in _HOSTS:
            return _HOSTS[host]
        if parts.port == 11434 or host == "ollama":
            return "ollama"
    for token in re.split(r"[-_.]", config.name.lower()):
        if token in VENDORS:
            return token
    return "generic"


def vendor_for(config: ProviderConfig) -> Vendor:
    """The vendor profile for an OpenAI-format provider, its base_url taken from the config if set."""
    name = config.vendor if config.vendor in VENDORS else _guess(config)
    vendor = VENDORS[name]
    if config.base_url:
        return dataclasses.replace(vendor, base_url=config.base_url.rstrip("/"))
    if not vendor.base_url:
        raise ConfigError(f"provider {config.name!r}: vendor {config.vendor or 'generic'!r} needs a base_url")
    return vendor
