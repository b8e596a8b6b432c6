"""The built-in client-facing endpoints: Anthropic's Messages API, OpenAI's chat completions and its
Responses API."""

from __future__ import annotations

from collections.abc import Callable

from ccrouter.api import anthropic, models, openai, responses
from ccrouter.api.endpoints import Endpoint
from ccrouter.hookspecs import hookimpl

__all__ = ["BUILTIN_ENDPOINTS", "register_endpoints"]

BUILTIN_ENDPOINTS = (
    Endpoint("POST", "/v1/messages", anthropic.messages, "messages"),
    Endpoint("POST", "/v1/messages/count_tokens", anthropic.count_tokens, "count_tokens"),
    Endpoint("POST", "/v1/chat/completions", openai.chat_completions, "chat_completions", envelope="openai"),
    Endpoint("POST", "/v1/responses", responses.responses, "responses", envelope="openai"),
    # Read by Anthropic and OpenAI SDKs alike: each gets its own shape and error envelope (told apart
    # by headers, ``api.models``); errors raised before the handler answer in Anthropic's envelope.
    Endpoint("GET", "/v1/models", models.list_models, "models"),
    Endpoint("GET", "/v1/models/{model_id}", models.get_model, "models"),
)


@hookimpl
def register_endpoints(register: Callable[[Endpoint], None]) -> None:
    for endpoint in BUILTIN_ENDPOINTS:
        register(endpoint)
