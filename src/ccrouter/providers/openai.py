"""The OpenAI-format wire adapter: OpenAI, DeepSeek, Groq, OpenRouter, Ollama, GitHub Models and
any OpenAI-compatible server, each through its vendor profile (``openai_vendors``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from ccrouter.builtins.vendors import VENDORS as BUILTIN_VENDORS
from ccrouter.codecs.openai.chat import Dialect, decode_response, encode_request
from ccrouter.codecs.openai.memo import EncodeMemo
from ccrouter.codecs.openai.stream import OpenAIStreamDecoder
from ccrouter.codecs.openai.toolnames import ToolNames
from ccrouter.config import ProviderConfig
from ccrouter.messages import MessagesRequest, MessagesResponse
from ccrouter.providers.base import HttpCall, StreamDecoder
from ccrouter.providers.openai_vendors import Vendor, vendor_for

__all__ = ["OpenAIAdapter", "OpenAICallContext", "error_text"]

_MAX_MESSAGE = 1000
# Key-like tokens some providers echo in auth errors ("Incorrect API key provided: sk-ab***yz").
_SECRET = re.compile(r"\b(?:sk|gsk|ghp|gho|github_pat|xai|pk)[-_][A-Za-z0-9_\-*.]{6,}|Bearer\s+\S+")


@dataclass(frozen=True, slots=True)
class OpenAICallContext:
    """Per-call state handed back to the parse methods."""

    names: ToolNames
    dialect: Dialect
    model: str


# OpenAI answers a reasoning model that spends all of max_completion_tokens before any output with a
# 400 (gpt-5 models with max_completion_tokens 1 or 2; the message, as OpenAI words it, is matched
# case-insensitively). Anthropic reports the same thing as a finished message with stop_reason
# max_tokens, and Claude Code's model probe (max_tokens: 1, sent when /model names a model) must
# succeed: reported by https://github.com/saurabhav88/EnviousWispr/pull/2072.
_OUTPUT_LIMIT = "could not finish the message because max_tokens or model output limit was reached"


class OpenAIAdapter:
    """``WireAdapter`` for chat completions: ``POST {base_url}/chat/completions``; also ``ErrorAnswers``."""

    wire = "openai"

    def __init__(self, config: ProviderConfig, vendors: Mapping[str, Vendor] | None = None) -> None:
        """``vendors``: the registered vendor profiles (default: ccrouter's own)."""
        self._config = config
        self._vendor = vendor_for(config, BUILTIN_VENDORS if vendors is None else vendors)
        self._url = f"{self._vendor.base_url}/chat/completions"
        self._api_key = config.api_key.get_secret_value() if config.api_key is not None else None
        self._headers = {
            "Content-Type": "application/json",
            **self.auth_headers(),
            **config.headers,
        }
        # Claude Code resends the same history and tools every turn: translate only what is new. (The
        # body then holds serialised parts, which orjson.dumps with default options copies as they are.)
        self._memo = EncodeMemo()

    def auth_headers(self) -> dict[str, str]:
        """The key's headers (the vendor's: ``Authorization: Bearer`` mostly)."""
        return self._vendor.headers(self._api_key)

    @property
    def vendor(self) -> str:
        return self._vendor.name

    def url(self, model: str) -> str:
        """Where a call to ``model`` goes (Azure's deployments differ per model)."""
        return self._url

    def build(self, request: MessagesRequest, model: str, *, stream: bool) -> HttpCall:
        # A model's quirks follow what it is (an alias's base_model), the body names it as routed.
        dialect = self._vendor.dialect(self._config.catalog_model(model))
        body, names = encode_request(request, model, stream=stream, dialect=dialect, memo=self._memo)
        headers = dict(self._headers)
        if stream:
            headers["Accept"] = "text/event-stream"
        return HttpCall(
            url=self.url(model),
            headers=headers,
            body=orjson.dumps(body),
            context=OpenAICallContext(names=names, dialect=dialect, model=model),
        )

    def parse_response(self, body: bytes, call: HttpCall) -> MessagesResponse:
        context: OpenAICallContext = call.context
        return decode_response(body, context.names, context.dialect, provider=self._config.name)

    def stream_decoder(self, call: HttpCall) -> StreamDecoder:
        context: OpenAICallContext = call.context
        return OpenAIStreamDecoder(
            context.names, context.dialect, model=context.model, provider=self._config.name
        )

    def answer_for_error(self, status: int, body: bytes, call: HttpCall) -> MessagesResponse | None:
        """The output-limit 400 as an empty message that stopped at max_tokens."""
        if status != 400 or _OUTPUT_LIMIT not in _message_from(body).lower():
            return None
        context: OpenAICallContext = call.context
        return MessagesResponse(
            id=context.names.fresh_id("msg"), model=context.model, content=[], stop_reason="max_tokens"
        )

    def error_message(self, status: int, body: bytes) -> str:
        return error_text(status, body, self._api_key)


def error_text(status: int, body: bytes, api_key: str | None = None) -> str:
    """The provider's error message (OpenAI envelope, Ollama's string, a list of them, or text),
    with ``api_key`` and anything that looks like a credential removed; shared by the OpenAI-format
    adapters (chat completions, Responses)."""
    message = _message_from(body)
    if not message:
        message = f"HTTP {status}"
    if api_key:
        message = message.replace(api_key, "[redacted]")
    message = _SECRET.sub("[redacted]", message)
    return message[:_MAX_MESSAGE]


def _message_from(body: bytes) -> str:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace").strip()
    if isinstance(data, list) and data:  # Gemini's OpenAI endpoint wraps the envelope in a list
        data = data[0]
    if not isinstance(data, dict):
        return str(data)
    error = data.get("error", data)
    if isinstance(error, str):
        return error
    if isinstance(error, dict):
        message = error.get("message")
        if isinstance(message, str) and message:
            kind = error.get("type") or error.get("code")
            if isinstance(kind, str) and kind and kind not in message:
                return f"{message} ({kind})"
            return message
    return body.decode("utf-8", "replace").strip()
