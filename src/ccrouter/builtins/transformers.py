"""The built-in transformers: claude-code-router's, applied on the canonical model.

Its vendor and wire-format transformers (``deepseek``, ``groq``, ``openrouter``, ``gemini``,
``anthropic``, ``openai``, ``vertex-gemini``) are not transformers here: ccrouter's vendor profiles
(``providers[].vendor``) and wire formats (``providers[].type``) do their work, and ``config import-ccr``
turns them into those settings.
"""

from __future__ import annotations

from collections.abc import Callable

from ccrouter.hookspecs import hookimpl
from ccrouter.transformers.base import TransformerFactory
from ccrouter.transformers.request import CleanCache, CustomParams, MaxToken, Reasoning, Sampling
from ccrouter.transformers.tools import EnhanceTool, ToolUse

__all__ = ["register_transformers"]


@hookimpl
def register_transformers(register: Callable[[str, TransformerFactory], None]) -> None:
    for transformer in (MaxToken, Sampling, CleanCache, CustomParams, Reasoning, ToolUse, EnhanceTool):
        register(transformer.name, transformer)
