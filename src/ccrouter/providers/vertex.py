"""Google Vertex AI: Anthropic's Claude models and Google's Gemini models, with refreshed Google tokens.

One ``type: vertex`` provider serves both publishers of a project and region; the model name picks
the publisher (``claude-*``: anthropic, else google; ``publishers`` overrides it per model):

- anthropic: ``POST {base}/v1/projects/{project}/locations/{region}/publishers/anthropic/models/
  {model}:rawPredict`` (``:streamRawPredict`` streamed), the Anthropic Messages body without ``model``
  and with ``anthropic_version: vertex-2023-10-16``; the answer and the SSE stream are Anthropic's
  (https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/use-claude).
- google: ``.../publishers/google/models/{model}:generateContent`` (``:streamGenerateContent?alt=sse``),
  the Gemini codec.

``{base}`` is ``https://{region}-aiplatform.googleapis.com``, or ``https://aiplatform.googleapis.com``
for the ``global`` region. Auth is ``Authorization: Bearer <Google access token>`` from
``ccrouter.providers.google_tokens``; a 401 refreshes the token once and retries the call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

import google.auth.exceptions
import orjson

from ccrouter.codecs.anthropic import codec
from ccrouter.codecs.anthropic.encode import dumps_as_received, encode_request
from ccrouter.codecs.anthropic.stream import AnthropicStreamDecoder
from ccrouter.codecs.prompt import CleanTexts
from ccrouter.config import ProviderConfig
from ccrouter.errors import ConfigError, UpstreamStatusError
from ccrouter.messages import MessagesRequest, MessagesResponse, StreamEvent
from ccrouter.providers.anthropic import fit_for_anthropic
from ccrouter.providers.base import HttpCall, StreamDecoder, WireAdapter
from ccrouter.providers.gemini import GeminiAdapter
from ccrouter.providers.google_tokens import GoogleTokens, StaticToken, TokenSource, load_credentials
from ccrouter.providers.http import HttpProvider, new_session
from ccrouter.providers.proxy import EgressProxy

if TYPE_CHECKING:
    from ccrouter.plugins import Registry

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_REGION",
    "AnthropicVertexAdapter",
    "Publisher",
    "VertexProvider",
    "endpoint_base",
    "model_url",
    "open_vertex",
    "publisher_for",
]

Publisher = Literal["anthropic", "google"]
DEFAULT_REGION = "global"
# The body's version field for Claude on Vertex (no anthropic-version header there).
ANTHROPIC_VERSION = "vertex-2023-10-16"
_METHODS: dict[Publisher, tuple[str, str]] = {
    "anthropic": ("rawPredict", "streamRawPredict"),
    "google": ("generateContent", "streamGenerateContent?alt=sse"),
}
_MAX_MESSAGE = 500


def endpoint_base(region: str, base_url: str | None = None) -> str:
    """The service root: ``base_url`` (without a trailing ``/v1``) when set, else Google's host for
    ``region`` (the ``global`` region has no region prefix)."""
    if base_url:
        return base_url.rstrip("/").removesuffix("/v1")
    if region == "global":
        return "https://aiplatform.googleapis.com"
    return f"https://{region}-aiplatform.googleapis.com"


def publisher_path(base: str, project: str, region: str, publisher: Publisher) -> str:
    return f"{base}/v1/projects/{project}/locations/{region}/publishers/{publisher}"


def model_url(base: str, project: str, region: str, publisher: Publisher, model: str, *, stream: bool) -> str:
    """Where a call to ``model`` of ``publisher`` goes."""
    method = _METHODS[publisher][1 if stream else 0]
    name = quote(model.removeprefix("models/"), safe="-._~@")
    return f"{publisher_path(base, project, region, publisher)}/models/{name}:{method}"


def publisher_for(model: str, overrides: Mapping[str, Publisher]) -> Publisher:
    """``overrides[model]``, else anthropic for a Claude name, else google."""
    found = overrides.get(model)
    if found is not None:
        return found
    return "anthropic" if model.lower().startswith("claude") else "google"


class AnthropicVertexAdapter:
    """Claude on Vertex: the Anthropic codec, Vertex's URL and body envelope. Pure; the bearer token
    is added by the provider."""

    wire = "anthropic"

    def __init__(self, config: ProviderConfig, base: str, region: str) -> None:
        assert config.project is not None  # ProviderConfig requires it for type: vertex
        self._base, self._project, self._region = base, config.project, region
        self._extra_headers = dict(config.headers)
        self._clean = CleanTexts()

    def build(self, request: MessagesRequest, model: str, *, stream: bool) -> HttpCall:
        headers = {"content-type": "application/json"}
        if request.betas:
            headers["anthropic-beta"] = request.betas
        headers.update(self._extra_headers)
        request = fit_for_anthropic(request, anthropic_api=False, clean=self._clean)
        body = {"anthropic_version": ANTHROPIC_VERSION}
        body.update(encode_request(request, model, stream=stream))
        del body["model"]  # named by the URL; Vertex rejects it in the body
        url = model_url(self._base, self._project, self._region, "anthropic", model, stream=stream)
        return HttpCall(url=url, headers=headers, body=dumps_as_received(body, request))

    def parse_response(self, body: bytes, call: HttpCall) -> MessagesResponse:
        return codec.decode_response(body)

    def stream_decoder(self, call: HttpCall) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder()

    def error_message(self, status: int, body: bytes) -> str:
        """Anthropic's envelope or Google's ``{"error": {"message", "status"}}`` (maybe in a list)."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, list) and data:
            data = data[0]
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict) and isinstance(error.get("message"), str) and error["message"]:
            kind = error.get("status")
            # Kept verbatim otherwise: Claude Code parses "prompt is too long: N tokens > M" from it.
            message = f"{kind}: {error['message']}" if isinstance(kind, str) else error["message"]
        else:
            message = body.decode("utf-8", "replace").strip() or f"HTTP {status} with an empty body"
        return str(message)[:_MAX_MESSAGE]


class _Bearer:
    """A wire adapter with the token source's current token as ``Authorization: Bearer``."""

    def __init__(self, inner: WireAdapter, tokens: TokenSource) -> None:
        self.wire = inner.wire
        self._inner = inner
        self._tokens = tokens

    def build(self, request: MessagesRequest, model: str, *, stream: bool) -> HttpCall:
        call = self._inner.build(request, model, stream=stream)
        call.headers["Authorization"] = f"Bearer {self._tokens.current}"
        return call

    def parse_response(self, body: bytes, call: HttpCall) -> MessagesResponse:
        return self._inner.parse_response(body, call)

    def stream_decoder(self, call: HttpCall) -> StreamDecoder:
        return self._inner.stream_decoder(call)

    def error_message(self, status: int, body: bytes) -> str:
        message = self._inner.error_message(status, body)
        token = self._tokens.current
        return message.replace(token, "[redacted]") if token else message


class VertexProvider:
    """Both Vertex publishers behind one provider, sharing one connection pool and one token source.

    ``wire`` is "gemini" when every configured model is Google's, else "anthropic" (what transformers
    are told); each call speaks its model's publisher's wire."""

    def __init__(self, config: ProviderConfig, tokens: TokenSource) -> None:
        assert config.project is not None
        self.name = config.name
        self._tokens = tokens
        self._publishers = dict(config.publishers)
        region = config.region or DEFAULT_REGION
        base = endpoint_base(region, config.base_url)
        google = config.model_copy(
            update={
                "vendor": "vertex",
                "api_key": None,
                "base_url": publisher_path(base, config.project, region, "google"),
            }
        )
        self._session = new_session(config)
        adapters: dict[Publisher, WireAdapter] = {
            "anthropic": AnthropicVertexAdapter(config, base, region),
            "google": GeminiAdapter(google),
        }
        self._inner = {
            publisher: HttpProvider(config, _Bearer(adapter, tokens), self._session)
            for publisher, adapter in adapters.items()
        }
        named = {publisher_for(spec.name, self._publishers) for spec in config.models}
        self.wire = "gemini" if named == {"google"} else "anthropic"

    def _for(self, model: str) -> HttpProvider:
        return self._inner[publisher_for(model, self._publishers)]

    def _retries(self, exc: UpstreamStatusError) -> bool:
        return exc.status == 401 and self._tokens.refreshable

    async def complete(self, request: MessagesRequest, model: str) -> MessagesResponse:
        inner = self._for(model)
        used = await self._tokens.token()
        try:
            return await inner.complete(request, model)
        except UpstreamStatusError as exc:
            if not self._retries(exc):
                raise
        # Revoked or expired early: one fresh token, one more try.
        await self._tokens.replace(used)
        return await inner.complete(request, model)

    async def stream(self, request: MessagesRequest, model: str) -> AsyncIterator[list[StreamEvent]]:
        inner = self._for(model)
        used = await self._tokens.token()
        try:
            async for events in inner.stream(request, model):
                yield events
            return
        except UpstreamStatusError as exc:
            # A status error is raised before the first event (the response head), never after.
            if not self._retries(exc):
                raise
        await self._tokens.replace(used)
        async for events in inner.stream(request, model):
            yield events

    async def aclose(self) -> None:
        await self._session.close()


async def _token_source(config: ProviderConfig) -> TokenSource:
    if config.api_key is not None:
        return StaticToken(config.api_key)
    path = config.credentials_file
    # Token exchanges take the same egress proxy as the calls (chosen per token endpoint URL).
    egress = EgressProxy.open(config)
    if path is None:
        # Application Default Credentials, found on the first call (they may ask the metadata server).
        return GoogleTokens(config.name, lambda: load_credentials(None), egress=egress)
    try:
        credentials = await asyncio.to_thread(load_credentials, path)
    except (google.auth.exceptions.GoogleAuthError, OSError, ValueError) as exc:
        reason = str(exc.args[0]) if exc.args else type(exc).__name__
        raise ConfigError(f"providers.{config.name}.credentials_file: {reason[:_MAX_MESSAGE]}") from None
    return GoogleTokens(config.name, lambda: credentials, egress=egress)


async def open_vertex(config: ProviderConfig, registry: Registry) -> VertexProvider:
    """The ``vertex`` provider type's opener: reads ``credentials_file`` now (a bad one is a config
    error at start), Application Default Credentials on the first call."""
    return VertexProvider(config, await _token_source(config))
