"""Gemini wire adapter: the Gemini API (generativelanguage.googleapis.com) and Vertex AI.

Both serve the same ``generateContent`` / ``streamGenerateContent?alt=sse`` methods under
``{base}/models/{model}``; they differ in auth and base URL only, kept in the ``_VENDORS`` registry:

- Gemini API: ``x-goog-api-key: <key>``, base ``https://generativelanguage.googleapis.com/v1beta``.
- Vertex AI: ``Authorization: Bearer <access token>`` (``api_key`` holds the token), base URL required,
  e.g. ``https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}/
  publishers/google``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import orjson

from ccrouter.codecs.gemini.codec import GeminiContext, GeminiStreamDecoder, decode_response, encode_request
from ccrouter.codecs.prompt import CleanTexts
from ccrouter.config import ProviderConfig
from ccrouter.errors import ConfigError
from ccrouter.messages import MessagesRequest, MessagesResponse
from ccrouter.providers.base import HttpCall, StreamDecoder

__all__ = ["VENDOR_NAMES", "GeminiAdapter"]

_MAX_MESSAGE = 500


@dataclass(frozen=True, slots=True)
class _Vendor:
    default_base_url: str | None
    auth_header: Callable[[str], tuple[str, str]]
    # Vertex AI v1 has rejected functionCall.id / functionResponse.id ("Unknown name "id""), the
    # Gemini API accepts them; without ids Gemini matches responses to calls by name and order.
    function_call_ids: bool


_VENDORS: dict[str, _Vendor] = {
    "gemini": _Vendor(
        default_base_url="https://generativelanguage.googleapis.com/v1beta",
        auth_header=lambda key: ("x-goog-api-key", key),
        function_call_ids=True,
    ),
    "vertex": _Vendor(
        default_base_url=None,
        auth_header=lambda token: ("Authorization", f"Bearer {token}"),
        function_call_ids=False,
    ),
}

# What ``providers[].vendor`` may name for a gemini-type provider.
VENDOR_NAMES = tuple(_VENDORS)


def _vendor_name(config: ProviderConfig) -> str:
    if config.vendor in _VENDORS:
        return config.vendor
    if config.vendor is None and config.base_url and "aiplatform.googleapis.com" in config.base_url:
        return "vertex"
    return "gemini"  # Gemini-compatible proxies take the Gemini API's key header


class GeminiAdapter:
    """``WireAdapter`` for Gemini-format providers. Pure: builds calls and reads bodies."""

    wire = "gemini"

    def __init__(self, config: ProviderConfig) -> None:
        vendor_name = _vendor_name(config)
        vendor = _VENDORS[vendor_name]
        base_url = config.base_url or vendor.default_base_url
        if not base_url:
            raise ConfigError(
                f"providers.{config.name}.base_url: vendor {vendor_name!r} needs a base_url like "
                "https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}"
                "/publishers/google"
            )
        self._name = config.name
        self._base_url = base_url.rstrip("/")
        self._function_call_ids = vendor.function_call_ids
        headers = {"content-type": "application/json"}
        self._secret = config.api_key.get_secret_value() if config.api_key is not None else ""
        if self._secret:
            header, value = vendor.auth_header(self._secret)
            headers[header] = value
        headers.update(config.headers)
        self._headers = headers
        # System prompt texts already found free of Claude Code's billing line.
        self._clean = CleanTexts()

    def url(self, model: str, *, stream: bool) -> str:
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"{self._base_url}/models/{quote(model.removeprefix('models/'), safe='-._~@')}:{method}"

    def build(self, request: MessagesRequest, model: str, *, stream: bool) -> HttpCall:
        body, context = encode_request(
            request, model, function_call_ids=self._function_call_ids, clean=self._clean
        )
        return HttpCall(
            url=self.url(model, stream=stream),
            headers=dict(self._headers),
            body=orjson.dumps(body),
            context=context,
        )

    def parse_response(self, body: bytes, call: HttpCall) -> MessagesResponse:
        return decode_response(body, self._context(call), provider=self._name)

    def stream_decoder(self, call: HttpCall) -> StreamDecoder:
        return GeminiStreamDecoder(self._context(call), provider=self._name)

    def error_message(self, status: int, body: bytes) -> str:
        """``{"error": {"code", "message", "status"}}`` (Vertex may wrap it in a list) -> one line."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, list) and data:
            data = data[0]
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict) and error.get("message"):
            kind = error.get("status")
            message = f"{kind}: {error['message']}" if kind else str(error["message"])
        else:
            message = body.decode("utf-8", "replace").strip() or f"HTTP {status}"
        return self._redact(message[:_MAX_MESSAGE])

    def _context(self, call: HttpCall) -> GeminiContext:
        context = call.context
        if not isinstance(context, GeminiContext):
            raise TypeError("HttpCall.context was not built by GeminiAdapter.build")
        return context

    def _redact(self, message: str) -> str:
        # Google's messages do not quote keys, but a proxy in front of it might.
        if self._secret and self._secret in message:
            return message.replace(self._secret, "[redacted]")
        return message
