"""The Anthropic Messages wire adapter: Anthropic itself and any Anthropic-compatible endpoint.

Auth is ``x-api-key`` plus the mandatory ``anthropic-version`` header
(https://docs.anthropic.com/en/api/versioning); the client's ``anthropic-beta`` list is forwarded so
beta features it relies on (interleaved thinking, context management) keep working.

The rules of Anthropic's API for a request (``fit_for_anthropic``) live here too: Claude Code's
billing line is kept only for Anthropic's own API, and thinking is turned off where Anthropic would
refuse it. They edit the canonical request, copy-on-write; the codec encodes what changed.
"""

from __future__ import annotations

from ccrouter.codecs.anthropic import codec
from ccrouter.codecs.anthropic.stream import AnthropicStreamDecoder
from ccrouter.codecs.billing import without_billing_line
from ccrouter.codecs.prompt import CleanTexts
from ccrouter.config import ProviderConfig
from ccrouter.messages import MessagesRequest, MessagesResponse, ThinkingBlock, ThinkingConfig, ToolUseBlock
from ccrouter.providers.base import HttpCall, envelope_message

__all__ = ["DEFAULT_BASE_URL", "AnthropicAdapter", "fit_for_anthropic", "is_anthropic_api"]

DEFAULT_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
_MAX_ERROR_TEXT = 500


def is_anthropic_api(config: ProviderConfig) -> bool:
    """Whether ``config`` is Anthropic's own API (not an Anthropic-compatible endpoint elsewhere)."""
    return config.type == "anthropic" and (config.base_url is None or "api.anthropic.com" in config.base_url)


def fit_for_anthropic(
    request: MessagesRequest, *, anthropic_api: bool, clean: CleanTexts | None = None
) -> MessagesRequest:
    """``request`` as an Anthropic endpoint takes it (itself when nothing changes, else a shallow
    copy). ``anthropic_api``: the endpoint is Anthropic's own API (``is_anthropic_api``).
    ``clean``: texts known to hold no billing line, kept across requests by the caller."""
    if not anthropic_api:
        # Only Anthropic's API reads the billing line; elsewhere it defeats the prefix cache.
        request = without_billing_line(request, clean)
    if request.thinking.on and not _tool_turn_starts_with_own_thinking(request):
        # Anthropic rejects thinking when the last assistant turn used a tool without starting with a
        # thinking block it signed ("a final assistant message must start with a thinking block"):
        # the case after a session moved here from another provider, whose thinking is dropped.
        request = request.copy()
        request.thinking = ThinkingConfig(type="disabled")
    return request


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
        self._anthropic_api = is_anthropic_api(config)
        # System prompt texts already found free of Claude Code's billing line.
        self._clean = CleanTexts()

    def build(self, request: MessagesRequest, model: str, *, stream: bool) -> HttpCall:
        headers = dict(self._headers)
        if request.betas:
            headers["anthropic-beta"] = request.betas
        # Configured headers come last so an operator can override anything above.
        headers.update(self._extra_headers)
        request = fit_for_anthropic(request, anthropic_api=self._anthropic_api, clean=self._clean)
        body = codec.encode_request_json(request, model, stream=stream)
        return HttpCall(url=self._url, headers=headers, body=body)

    def parse_response(self, body: bytes, call: HttpCall) -> MessagesResponse:
        return codec.decode_response(body)

    def stream_decoder(self, call: HttpCall) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder()

    def error_message(self, status: int, body: bytes) -> str:
        """The message of Anthropic's error envelope, else a short excerpt of the body."""
        message = envelope_message(body)
        if message is not None:
            # Kept verbatim: Claude Code parses "prompt is too long: N tokens > M" from it.
            return message
        text = body[:_MAX_ERROR_TEXT].decode("utf-8", "replace").strip()
        return text or f"HTTP {status} with an empty body"
