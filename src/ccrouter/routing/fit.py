"""Fit a request to its target: a shallow copy with the billing-header line removed where it would
defeat a provider's prompt cache, ``max_tokens`` clamped to the model's limit, thinking and reasoning
effort fitted to what the model supports. Pure; unchanged parts are shared, not copied."""

from __future__ import annotations

from ccrouter.catalog import ModelInfo, clamp_max_tokens
from ccrouter.config import ProviderConfig
from ccrouter.messages import MessagesRequest, ThinkingBlock, ThinkingConfig, ToolUseBlock
from ccrouter.routing.prepare import CleanTexts, strip_billing_header

__all__ = ["fit_request"]

# Anthropic requires 1,024 <= budget_tokens < max_tokens for enabled thinking.
_MIN_THINKING_BUDGET = 1024


def _is_official_anthropic(config: ProviderConfig) -> bool:
    return config.type == "anthropic" and (config.base_url is None or "api.anthropic.com" in config.base_url)


def fit_request(
    request: MessagesRequest, config: ProviderConfig, info: ModelInfo, clean: CleanTexts | None = None
) -> MessagesRequest:
    """A copy of ``request`` fitted to the target. Shallow: unchanged parts are shared, not copied.
    ``clean``: texts known to hold no billing line (``strip_billing_header``)."""
    prepared = request.copy()
    if not _is_official_anthropic(config):
        # The line changes on every request; left in, it defeats the provider's prefix cache.
        if prepared.raw is not None:
            prepared.raw = dict(prepared.raw)
        prepared.system = list(prepared.system)
        strip_billing_header(prepared, clean)
    prepared.max_tokens = clamp_max_tokens(request.max_tokens, info)
    thinking = _fit_thinking(request.thinking, prepared.max_tokens, info)
    if thinking.on and config.type == "anthropic" and not _tool_turn_starts_with_own_thinking(request):
        # Anthropic rejects thinking when the last assistant turn used a tool without starting with a
        # thinking block it signed ("a final assistant message must start with a thinking block"):
        # the case after a session moved here from another provider, whose thinking is dropped.
        thinking = ThinkingConfig(type="disabled")
    if not info.thinking and prepared.effort is not None:
        # Reasoning effort means nothing to a model without reasoning; OpenAI-style APIs reject it.
        prepared.effort = None
    if thinking != request.thinking:
        prepared.thinking = thinking
        if prepared.raw is not None and prepared.raw_format == "anthropic":
            prepared.raw = {**prepared.raw, "thinking": _thinking_wire(thinking)}
    return prepared


def _tool_turn_starts_with_own_thinking(request: MessagesRequest) -> bool:
    """True unless the last assistant message calls a tool without an Anthropic-signed thinking
    block first."""
    last = next((m for m in reversed(request.messages) if m.role == "assistant"), None)
    if last is None or not any(isinstance(block, ToolUseBlock) for block in last.content):
        return True
    first = last.content[0] if last.content else None
    return (
        isinstance(first, ThinkingBlock)
        and first.origin == "anthropic"
        and (first.redacted or bool(first.signature))
    )


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


def _thinking_wire(thinking: ThinkingConfig) -> dict[str, object]:
    if thinking.type == "enabled":
        return {"type": "enabled", "budget_tokens": thinking.budget_tokens}
    return {"type": thinking.type}
