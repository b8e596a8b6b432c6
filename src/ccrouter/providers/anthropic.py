"""The Anthropic Messages wire adapter: Anthropic itself and any Anthropic-compatible endpoint.

Auth is ``x-api-key`` plus the mandatory ``anthropic-version`` header
(https://docs.anthropic.com/en/api/versioning); the client's ``anthropic-beta`` list is forwarded so
beta features it relies on (interleaved thinking, context management) keep working.
"""

from __future__ import annotations

import orjson

from ccrouter.codecs.anthropic import codec
from ccrouter.codecs.anthropic.stream import AnthropicStreamDecoder
from ccrouter.config import ProviderConfig
from ccrouter.messages import MessagesRequest, MessagesResponse
from ccrouter.providers.base import HttpCall

__all__ = ["DEFAULT_BASE_URL", "AnthropicAdapter"]

DEFAULT_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
_MAX_ERROR_TEXT = 500


def messages_url(base_url: str | None) -> str:
    """``<base>/v1/messages``, whether or not the configured base already ends in ``/v1``."""
    base = (base_url or DEFAULT_BASE_URL).rstrip("/")
    if base.endswith("/v1/messages"):
        return base
    if base.endswith("/v1"):
        base = base[: -len("/v1")]
    return base + "/v1/messages"


class AnthropicAdapter:
    """Builds Messages API calls and reads their answers; pure, no I/O."""

    wire = "anthropic"

    def __init__(self, config: ProviderConfig) -> None:
        self._url = messages_url(config.base_url)
        headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        if config.api_key is not None:
            headers["x-api-key"] = config.api_key.get_secret_value()
        self._headers = headers
        self._extra_headers = dict(config.headers)

    def build(self, request: MessagesRequest, model: str, *, stream: bool) -> HttpCall:
        headers = dict(self._headers)
        if request.betas:
            headers["anthropic-beta"] = request.betas
        # Configured headers come last so an operator can override anything above.
        headers.update(self._extra_headers)
        body = codec.encode_request_json(request, model, stream=stream)
        return HttpCall(url=self._url, headers=headers, body=body)

    def parse_response(self, body: bytes, call: HttpCall) -> MessagesResponse:
        return codec.decode_response(body)

    def stream_decoder(self, call: HttpCall) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder()

    def error_message(self, status: int, body: bytes) -> str:
        """The message of Anthropic's error envelope, else a short excerpt of the body."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            error = data.get("error")
            message = error.get("message") if isinstance(error, dict) else error
            if isinstance(message, str) and message:
                # Kept verbatim: Claude Code parses "prompt is too long: N tokens > M" from it.
                return message
        text = body[:_MAX_ERROR_TEXT].decode("utf-8", "replace").strip()
        return text or f"HTTP {status} with an empty body"
