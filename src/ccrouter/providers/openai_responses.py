"""The OpenAI Responses API wire adapter (``type: openai_responses``): ``POST {base_url}/responses``
with a Bearer key, for models OpenAI serves on that API only (o1-pro, o3-pro, gpt-5-codex, gpt-5-pro,
codex-mini...) and servers that speak it. The codec is ``ccrouter.codecs.responses``; every call is
stateless (``store: false``, the whole history, never ``previous_response_id``: the codec says why).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from ccrouter.codecs.openai.toolnames import ToolNames
from ccrouter.codecs.prompt import CleanTexts
from ccrouter.codecs.responses.request import encode_request
from ccrouter.codecs.responses.response import WIRE, decode_response
from ccrouter.codecs.responses.stream import ResponsesStreamDecoder
from ccrouter.config import ProviderConfig
from ccrouter.messages import MessagesRequest, MessagesResponse
from ccrouter.providers.base import HttpCall, StreamDecoder
from ccrouter.providers.openai import error_text

__all__ = ["DEFAULT_BASE_URL", "OpenAIResponsesAdapter"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"


@dataclass(frozen=True, slots=True)
class _Context:
    names: ToolNames
    model: str


class OpenAIResponsesAdapter:
    """``WireAdapter`` for the Responses API. Pure: builds calls and reads bodies."""

    wire = WIRE

    def __init__(self, config: ProviderConfig) -> None:
        self._name = config.name
        self._url = f"{(config.base_url or DEFAULT_BASE_URL).rstrip('/')}/responses"
        self._api_key = config.api_key.get_secret_value() if config.api_key is not None else None
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        headers.update(config.headers)
        self._headers = headers
        # System prompt texts already found free of Claude Code's billing line.
        self._clean = CleanTexts()

    @property
    def url(self) -> str:
        return self._url

    def build(self, request: MessagesRequest, model: str, *, stream: bool) -> HttpCall:
        body, names = encode_request(request, model, stream=stream, clean=self._clean)
        headers = dict(self._headers)
        if stream:
            headers["Accept"] = "text/event-stream"
        return HttpCall(
            url=self._url, headers=headers, body=orjson.dumps(body), context=_Context(names, model)
        )

    def parse_response(self, body: bytes, call: HttpCall) -> MessagesResponse:
        return decode_response(body, self._context(call).names, provider=self._name)

    def stream_decoder(self, call: HttpCall) -> StreamDecoder:
        context = self._context(call)
        return ResponsesStreamDecoder(context.names, model=context.model, provider=self._name)

    def error_message(self, status: int, body: bytes) -> str:
        """OpenAI's ``{"error": {...}}`` envelope as one line, credentials removed."""
        return error_text(status, body, self._api_key)

    def _context(self, call: HttpCall) -> _Context:
        context = call.context
        if not isinstance(context, _Context):
            raise TypeError("HttpCall.context was not built by OpenAIResponsesAdapter.build")
        return context
