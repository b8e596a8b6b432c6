"""The public providers ccrouter knows by name: their key variables, wire format, vendor profile, base
URL and a few current models with a pick per scenario.

One table, read by the first-run config (``config_file.detect_providers``) and by ``ccrouter init``.
Model ids are current public ones (December 2026); users edit them freely, and ``ccrouter init`` lists
what the provider itself answers when its models list is reachable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["PRESETS", "Preset", "preset"]


@dataclass(frozen=True, slots=True)
class Preset:
    """A provider recognised by its API key variables (the first set one wins; none: no key needed).
    ``background``/``think``/``long_context``: the model suggested for that scenario, if any."""

    name: str
    wire: str
    vendor: str
    base_url: str | None
    models: tuple[str, ...]
    key_vars: tuple[str, ...] = ()
    background: str | None = None
    think: str | None = None
    long_context: str | None = None
    label: str = ""

    @property
    def needs_key(self) -> bool:
        return bool(self.key_vars)

    def key_var(self, environ: Mapping[str, str]) -> str | None:
        """The first of ``key_vars`` set (non-empty) in ``environ``."""
        return next((var for var in self.key_vars if environ.get(var)), None)

    def provider(self, api_key: str | None = None) -> dict[str, Any]:
        """The provider entry of a config document; ``api_key`` is a reference (``${VAR}``...)."""
        out: dict[str, Any] = {"name": self.name, "type": self.wire, "vendor": self.vendor}
        if self.base_url:
            out["base_url"] = self.base_url
        if api_key is not None:
            out["api_key"] = api_key
        out["models"] = list(self.models)
        return out


# Order = preference for the default route of the first-run config.
PRESETS: tuple[Preset, ...] = (
    Preset(
        "anthropic", "anthropic", "anthropic", None,
        ("claude-sonnet-4-6", "claude-opus-4-5", "claude-haiku-4-5"), ("ANTHROPIC_API_KEY",),
        background="claude-haiku-4-5", think="claude-opus-4-5", label="Anthropic",
    ),
    Preset(
        "openai", "openai", "openai", "https://api.openai.com/v1",
        ("gpt-5", "gpt-5-mini", "gpt-4.1"), ("OPENAI_API_KEY",),
        background="gpt-5-mini", long_context="gpt-4.1", label="OpenAI",
    ),
    Preset(
        "deepseek", "openai", "deepseek", "https://api.deepseek.com/v1",
        ("deepseek-chat", "deepseek-reasoner"), ("DEEPSEEK_API_KEY",),
        think="deepseek-reasoner", label="DeepSeek",
    ),
    Preset(
        "groq", "openai", "groq", "https://api.groq.com/openai/v1",
        ("openai/gpt-oss-120b", "moonshotai/kimi-k2-instruct-0905", "llama-3.3-70b-versatile"),
        ("GROQ_API_KEY",), background="llama-3.3-70b-versatile", label="Groq",
    ),
    Preset(
        "openrouter", "openai", "openrouter", "https://openrouter.ai/api/v1",
        ("anthropic/claude-sonnet-4.5", "openai/gpt-5", "google/gemini-2.5-pro",
         "deepseek/deepseek-chat-v3.1"),
        ("OPENROUTER_API_KEY",), long_context="google/gemini-2.5-pro", label="OpenRouter",
    ),
    Preset(
        "gemini", "gemini", "gemini", None,
        ("gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite"), ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        background="gemini-2.5-flash", long_context="gemini-2.5-pro", label="Google Gemini",
    ),
    Preset(
        "github", "openai", "github", "https://models.github.ai/inference",
        ("openai/gpt-4.1", "openai/gpt-4.1-mini"), ("GITHUB_TOKEN",),
        background="openai/gpt-4.1-mini", label="GitHub Models",
    ),
    # No key; common coding models (`ollama list` shows what is pulled).
    Preset(
        "ollama", "openai", "ollama", "http://localhost:11434/v1",
        ("qwen2.5-coder:7b", "llama3.1:8b"), label="Ollama (local)",
    ),
)  # fmt: skip


def preset(name: str) -> Preset | None:
    return next((found for found in PRESETS if found.name == name), None)
