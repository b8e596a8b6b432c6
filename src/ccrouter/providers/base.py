"""The narrow provider interface: everything dispatch needs from a provider.

A provider takes a canonical request and the upstream model name and returns a canonical response
or a canonical event stream. Transport, auth, wire codec, vendor quirks and error mapping live
behind it; failures surface as ``ccrouter.errors.UpstreamError`` subclasses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import orjson

from ccrouter.codecs.sse import SSEFrame
from ccrouter.messages import MessagesRequest, MessagesResponse, StreamEvent

if TYPE_CHECKING:
    from ccrouter.config import ProviderConfig
    from ccrouter.plugins import Registry

__all__ = [
    "CallAuth",
    "ErrorAnswers",
    "ErrorStatuses",
    "FramedStreams",
    "Framer",
    "HttpCall",
    "Provider",
    "ProviderType",
    "StreamDecoder",
    "WireAdapter",
    "envelope_message",
]


@runtime_checkable
class Provider(Protocol):
    name: str
    # Wire format spoken upstream: "anthropic", "openai" or "gemini".
    wire: str

    async def complete(self, request: MessagesRequest, model: str) -> MessagesResponse:
        """One non-streamed call."""
        ...

    def stream(self, request: MessagesRequest, model: str) -> AsyncIterator[list[StreamEvent]]:
        """A streamed call, as the events of each upstream read in order (never an empty list): the
        client side writes each list at once, one socket write instead of one per event, and no event
        waits for a later read. Errors before the first event raise; later ones end the iteration by
        raising too (the caller turns them into an SSE ``error`` event)."""
        ...

    async def aclose(self) -> None: ...


class StreamDecoder(Protocol):
    """Turns upstream SSE frames into canonical events; stateful, one per call."""

    def feed(self, frame: SSEFrame) -> list[StreamEvent]: ...

    def finish(self) -> list[StreamEvent]:
        """Events owed when the upstream stream ended (closing blocks, final message_delta...).
        Raises ``UpstreamProtocolError`` if the stream ended before it was complete."""
        ...


@dataclass(slots=True)
class HttpCall:
    """What an adapter builds for the transport: where to POST what. ``context`` is the adapter's own
    per-call state (tool-name maps...) handed back to its parse methods."""

    url: str
    headers: dict[str, str]
    body: bytes
    context: Any = None
    # ``url`` is sent exactly as written, its percent escapes kept (by default the URL is normalised,
    # which decodes ``%3A`` to ``:``): a request signed over its path (AWS SigV4) needs these bytes.
    encoded: bool = False


class WireAdapter(Protocol):
    """One wire format plus one vendor's quirks, as the HTTP transport needs them. Pure: no I/O."""

    wire: str

    def build(self, request: MessagesRequest, model: str, *, stream: bool) -> HttpCall: ...

    def parse_response(self, body: bytes, call: HttpCall) -> MessagesResponse: ...

    def stream_decoder(self, call: HttpCall) -> StreamDecoder: ...

    def error_message(self, status: int, body: bytes) -> str:
        """A readable message from the provider's error body (never containing credentials)."""
        ...


@runtime_checkable
class ErrorAnswers(Protocol):
    """Optional for a ``WireAdapter`` (so adapters written before it still fit): an error status that
    is in fact a finished answer, as the client's API would have given it (OpenAI's 400 for a
    reasoning model out of output tokens is Anthropic's ``stop_reason: max_tokens``)."""

    def answer_for_error(self, status: int, body: bytes, call: HttpCall) -> MessagesResponse | None:
        """The answer ``status`` with ``body`` stands for; None: it is an error."""
        ...


@runtime_checkable
class ErrorStatuses(Protocol):
    """Optional for a ``WireAdapter`` whose error responses name their kind in a header (AWS's
    ``x-amzn-ErrorType``): the status to map the error by (the kind's, which may differ from the
    response's) and the readable message, in place of ``error_message``."""

    def error_status(self, status: int, body: bytes, headers: Mapping[str, str]) -> tuple[int, str]: ...


class Framer(Protocol):
    """Splits a streamed body into frames for a ``StreamDecoder``, however the bytes arrive; raises
    ``UpstreamProtocolError`` on bytes it cannot frame. ``SSEParser`` is the default one."""

    def feed(self, chunk: bytes) -> Iterable[SSEFrame]:
        """The frames ``chunk`` completes. May be a generator: frames before a bad one come first."""
        ...

    def flush(self) -> Iterable[SSEFrame]:
        """The stream ended: the frames left, or an error for an unfinished one."""
        ...


@runtime_checkable
class FramedStreams(Protocol):
    """Optional for a ``WireAdapter`` whose streams are not server-sent events (Bedrock's binary event
    stream): the framer of one call's stream, bounded by ``max_frame`` bytes a frame."""

    def framer(self, call: HttpCall, max_frame: int) -> Framer: ...


class CallAuth(Protocol):
    """Credentials that change while a provider is open (a bearer token refreshed before it
    expires): the headers to add to each call, awaited just before it goes out (cheap while the
    token is cached). Given by a ``ProviderType``'s ``auth``; closed with the provider."""

    async def headers(self) -> Mapping[str, str]:
        """Raises ``ccrouter.errors.UpstreamError`` when no credential can be had."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ProviderType:
    """What ``providers[].type`` names, as a plugin registers it (``register_providers``): either a
    wire format spoken over HTTP (``adapter`` builds the pure ``WireAdapter`` for one provider's
    config; the transport, pools and credentials are ccrouter's) or a provider of its own
    (``opener`` returns a ready ``Provider``). Both get the ``Registry`` too (the registered vendor
    profiles, transformers...)."""

    name: str
    adapter: Callable[[ProviderConfig, Registry], WireAdapter] | None = None
    opener: Callable[[ProviderConfig, Registry], Awaitable[Provider]] | None = None
    # One line for ``ccrouter plugins list`` and the docs.
    description: str = ""
    # What ``providers[].vendor`` may name with this type, checked when the config is loaded: these
    # names, or with ``vendor_profiles`` the registered vendor profiles (``register_vendors``);
    # neither: not checked.
    vendors: tuple[str, ...] = ()
    vendor_profiles: bool = False
    # With ``adapter``: the call credentials of one provider's credential (its config, keyed), or None
    # when the adapter's own headers suffice (``CallAuth``).
    auth: Callable[[ProviderConfig], CallAuth | None] | None = None

    def __post_init__(self) -> None:
        if (self.adapter is None) == (self.opener is None):
            raise ValueError(f"provider type {self.name!r}: give exactly one of adapter= or opener=")


def envelope_message(body: bytes) -> str | None:
    """The message of an ``{"error": {"message": ...}}`` envelope (Anthropic's and OpenAI's; also
    ``{"error": "..."}``), verbatim; None when ``body`` holds none."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    message = error.get("message") if isinstance(error, dict) else error
    return message if isinstance(message, str) and message else None
