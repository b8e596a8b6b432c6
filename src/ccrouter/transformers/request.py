"""Built-in transformers that change only what a provider is asked (claude-code-router's
``maxtoken``, ``sampling``, ``cleancache``, ``customparams`` and ``reasoning``; the behaviour of each
follows its source in musistudio/llms, ``src/transformer/<name>.transformer.ts``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from ccrouter.messages import (
    ContentBlock,
    ImageBlock,
    Message,
    MessagesRequest,
    OtherBlock,
    TextBlock,
    ThinkingConfig,
    Tool,
    ToolResultBlock,
    ToolUseBlock,
)
from ccrouter.transformers.base import Transformer, detached
from ccrouter.transformers.options import Options, parse_options

__all__ = ["CleanCache", "CustomParams", "MaxToken", "Reasoning", "Sampling"]


class _MaxTokenOptions(Options):
    max_tokens: int = Field(gt=0)


class MaxToken(Transformer):
    """Caps ``max_tokens`` (for a model whose server refuses more than it can give)."""

    name = "maxtoken"

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.max_tokens = parse_options(_MaxTokenOptions, options).max_tokens

    def request(self, request: MessagesRequest, model: str) -> MessagesRequest:
        if request.max_tokens <= self.max_tokens:
            return request
        # max_tokens is read from the canonical field even when the encoder starts from ``raw``.
        new = request.copy()
        new.max_tokens = self.max_tokens
        return new


class _SamplingOptions(Options):
    max_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, gt=0)
    repetition_penalty: float | None = Field(default=None, gt=0)


class Sampling(Transformer):
    """Forces the sampling settings it is given, whatever the client sent. ``repetition_penalty``
    has no canonical field: it is sent as a body field to OpenAI-chat providers (vLLM, SiliconFlow...);
    so is ``top_k``, which the OpenAI-chat format lacks (Anthropic and Gemini encode it themselves)."""

    name = "sampling"

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = parse_options(_SamplingOptions, options)

    def request(self, request: MessagesRequest, model: str) -> MessagesRequest:
        o = self.options
        new = detached(request)
        if o.max_tokens is not None:
            new.max_tokens = min(new.max_tokens, o.max_tokens)
        if o.temperature is not None:
            new.temperature = o.temperature
        if o.top_p is not None:
            new.top_p = o.top_p
        if o.top_k is not None:
            new.top_k = o.top_k
        return new

    def params(self, request: MessagesRequest, model: str, wire: str) -> Mapping[str, Any]:
        if wire != "openai":
            return {}
        fields = {"top_k": self.options.top_k, "repetition_penalty": self.options.repetition_penalty}
        return {key: value for key, value in fields.items() if value is not None}


def _without_cache(block: ContentBlock) -> ContentBlock:
    if isinstance(block, OtherBlock):
        if "cache_control" not in block.raw:
            return block
        return OtherBlock({k: v for k, v in block.raw.items() if k != "cache_control"})
    if isinstance(block, ToolResultBlock):
        parts = [dataclasses.replace(part, cache_control=None) for part in block.content]
        return dataclasses.replace(block, content=parts, cache_control=None)
    if isinstance(block, TextBlock | ImageBlock | ToolUseBlock) and block.cache_control is not None:
        return dataclasses.replace(block, cache_control=None)
    return block


def _tool_without_cache(tool: Tool) -> Tool:
    raw = tool.raw
    if raw is not None and "cache_control" in raw:
        raw = {k: v for k, v in raw.items() if k != "cache_control"}
    return dataclasses.replace(tool, cache_control=None, raw=raw)


class CleanCache(Transformer):
    """Removes every ``cache_control`` marker (system, messages, tool results, tools): for servers
    that refuse the field or bill cache writes the client did not mean for them."""

    name = "cleancache"

    def __init__(self, options: Mapping[str, Any]) -> None:
        parse_options(Options, options)

    def request(self, request: MessagesRequest, model: str) -> MessagesRequest:
        new = detached(request)
        new.system = [dataclasses.replace(block, cache_control=None) for block in request.system]
        new.messages = [
            Message(message.role, [_without_cache(block) for block in message.content])
            for message in request.messages
        ]
        new.tools = [_tool_without_cache(tool) for tool in request.tools]
        return new


class CustomParams(Transformer):
    """Merges its options into the upstream body (objects key by key; an option's value wins over the
    body's): vendor fields ccrouter has no name for (``chat_template_kwargs``, ``provider``...)."""

    name = "customparams"

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.fields = dict(options)

    def params(self, request: MessagesRequest, model: str, wire: str) -> Mapping[str, Any]:
        return self.fields


class _ReasoningOptions(Options):
    enable: bool = True


class Reasoning(Transformer):
    """Thinking for OpenAI-chat servers that switch it with ``enable_thinking`` / ``thinking`` body
    fields (Qwen, GLM, SiliconFlow): sent from the request's thinking setting. ``enable: false``
    turns thinking off for every request. (The other half of claude-code-router's ``reasoning``,
    reading ``reasoning_content`` back as thinking, is what the OpenAI-chat decoder always does.)"""

    name = "reasoning"

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.enable = parse_options(_ReasoningOptions, options).enable

    def request(self, request: MessagesRequest, model: str) -> MessagesRequest:
        if self.enable or (not request.thinking.on and request.effort is None):
            return request
        new = detached(request)
        new.thinking = ThinkingConfig("disabled")
        new.effort = None
        return new

    def params(self, request: MessagesRequest, model: str, wire: str) -> Mapping[str, Any]:
        if wire != "openai":
            return {}
        if not self.enable:
            return {"enable_thinking": False, "thinking": {"type": "disabled"}}
        if not request.thinking.on:
            return {}
        thinking: dict[str, Any] = {"type": "enabled"}
        if request.thinking.budget_tokens is not None:
            thinking["budget_tokens"] = request.thinking.budget_tokens
        return {"enable_thinking": True, "thinking": thinking}
