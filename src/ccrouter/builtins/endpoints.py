"""The built-in client-facing endpoints: Anthropic's Messages API and OpenAI's chat completions."""

from __future__ import annotations

from collections.abc import Callable

from ccrouter.api import anthropic, openai
from ccrouter.api.endpoints import Endpoint
from ccrouter.hookspecs import hookimpl

__all__ = ["BUILTIN_ENDPOINTS", "register_endpoints"]

BUILTIN_ENDPOINTS = (
    Endpoint("POST", "/v1/messages", anthropic.messages, "messages"),
    Endpoint("POST", "/v1/messages/count_tokens", anthropic.count_tokens, "count_tokens"),
    Endpoint("POST", "/v1/chat/completions", openai.chat_completions, "chat_completions", envelope="openai"),
    # Read by Anthropic and OpenAI SDKs alike; an error under it answers in Anthropic's envelope.
    Endpoint("GET", "/v1/models", anthropic.models, "models"),
)


@hookimpl
def register_endpoints(register: Callable[[Endpoint], None]) -> None:
    for endpoint in BUILTIN_ENDPOINTS:
        register(endpoint)
