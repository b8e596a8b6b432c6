"""Fit a request to its target model: a shallow copy with ``max_tokens`` clamped to the model's limit,
thinking and reasoning effort fitted to what the model supports. Pure; unchanged parts are shared, not
copied. Only canonical fields change: each wire encoder derives the upstream body from them, and the
rules of one provider's API live with that provider (``ccrouter.providers.anthropic``)."""

from __future__ import annotations

from ccrouter.catalog import ModelInfo, clamp_max_tokens
from ccrouter.messages import MessagesRequest, ThinkingConfig

__all__ = ["fit_request"]

# Anthropic requires 1,024 <= budget_tokens < max_tokens for enabled thinking.
_MIN_THINKING_BUDGET = 1024


def fit_request(request: MessagesRequest, info: ModelInfo) -> MessagesRequest:
    """A copy of ``request`` fitted to the target model. Shallow: unchanged parts are shared."""
    prepared = request.copy()
    prepared.max_tokens = clamp_max_tokens(request.max_tokens, info)
    thinking = _fit_thinking(request.thinking, prepared.max_tokens, info)
    if not info.thinking and prepared.effort is not None:
        # Reasoning effort means nothing to a model without reasoning; OpenAI-style APIs reject it.
        prepared.effort = None
    if thinking != request.thinking:
        prepared.thinking = thinking
    return prepared


def _fit_thinking(thinking: ThinkingConfig, max_tokens: int, info: ModelInfo) -> ThinkingConfig:
    if not thinking.on:
        return thinking
    if not info.thinking:
        return ThinkingConfig(type="disabled")
    if (
        thinking.type == "enabled"
        and thinking.budget_tokens is not None
        and thinking.budget_tokens >= max_tokens
    ):
        if max_tokens <= _MIN_THINKING_BUDGET:
            return ThinkingConfig(type="disabled")
        return ThinkingConfig(type="enabled", budget_tokens=max(_MIN_THINKING_BUDGET, max_tokens // 2))
    return thinking
