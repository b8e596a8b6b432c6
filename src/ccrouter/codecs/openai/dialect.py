"""What one OpenAI-compatible vendor or model needs from the chat codec (``Dialect``), and the types
the codec and its memo (``memo``) share. Vendors pick their dialect in
``ccrouter.providers.openai_vendors``, each entry naming the provider doc it follows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["JSON", "Dialect", "Pending"]

JSON = dict[str, Any]
# The wire ids of the calls the last assistant message made, still to be answered.
Pending = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Dialect:
    """What one vendor/model needs from the codec. ``Dialect()`` is plain OpenAI-compatible."""

    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    max_tokens_cap: int | None = None
    # o-series / gpt-5 reject non-default temperature/top_p, and ``stop``.
    drop_sampling: bool = False
    drop_stop: bool = False
    reasoning_style: Literal["reasoning_effort", "openrouter", "none"] = "reasoning_effort"
    # DeepSeek thinking mode answers 400 unless tool-call turns carry their reasoning_content back.
    echo_reasoning_content: bool = False
    # OpenRouter forwards cache_control on content parts to Anthropic models.
    keep_cache_control: bool = False
    # Schema keywords removed from tool parameters (Groq validates schemas strictly).
    strip_schema_keys: frozenset[str] = frozenset()
    stream_usage: bool = True
