"""The built-in OpenAI-compatible vendor profiles, registered through ``register_vendors``.

Each entry names the provider doc its quirks follow; the codec stays per wire format and a vendor only
adds its quirks (``Dialect``), its default base URL and its headers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import MappingProxyType

from ccrouter.codecs.openai.chat import Dialect
from ccrouter.hookspecs import hookimpl
from ccrouter.providers.openai_vendors import Vendor

__all__ = ["VENDORS", "register_vendors"]

# OpenAI reasoning models (o1, o3-mini, o4-mini, gpt-5, gpt-5.1...): max_completion_tokens only, no
# temperature/top_p/stop (400 "Unsupported parameter"). gpt-5-chat-* is the non-reasoning variant.
_REASONING_MODEL = re.compile(r"^(o\d|gpt-5)(?!.*-chat)")


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


_PROFILES: tuple[Vendor, ...] = (
    Vendor("openai", "https://api.openai.com/v1", _openai_dialect, hosts=("api.openai.com",)),
    Vendor("deepseek", "https://api.deepseek.com/v1", _deepseek_dialect, hosts=("api.deepseek.com",)),
    Vendor("groq", "https://api.groq.com/openai/v1", _groq_dialect, hosts=("api.groq.com",)),
    Vendor(
        "openrouter",
        "https://openrouter.ai/api/v1",
        _openrouter_dialect,
        # App attribution (openrouter.ai/docs/api-reference/overview#headers). The project has no
        # public site to name as HTTP-Referer; set one in the provider's `headers` if you want it.
        {"X-Title": "ccrouter"},
        hosts=("openrouter.ai",),
    ),
    # Ollama's default port (docs.ollama.com/api) tells it apart behind any host name.
    Vendor("ollama", "http://localhost:11434/v1", needs_key=False, hosts=("ollama",), ports=(11434,)),
    Vendor(
        "github",
        "https://models.github.ai/inference",
        _github_dialect,
        {"X-GitHub-Api-Version": "2022-11-28"},
        hosts=("models.github.ai", "models.inference.ai.azure.com"),
    ),
    Vendor("generic", ""),
)

# The built-in profiles by name: what an ``OpenAIAdapter`` built without a registry uses.
VENDORS = MappingProxyType({vendor.name: vendor for vendor in _PROFILES})


@hookimpl
def register_vendors(register: Callable[[Vendor], None]) -> None:
    for vendor in _PROFILES:
        register(vendor)
