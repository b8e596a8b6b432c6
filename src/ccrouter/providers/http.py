"""The HTTP transport every wire adapter shares: pooled aiohttp session, timeouts, error mapping.

``HttpProvider`` joins a pure ``WireAdapter`` (what to send, how to read it) with the network. All
foreign errors (aiohttp, asyncio timeouts) are mapped to ``ccrouter.errors`` here and only here.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping

import aiohttp
from yarl import URL

from ccrouter.codecs.events import response_events
from ccrouter.codecs.sse import SSEParser
from ccrouter.config import DEFAULT_POOL_SIZE, ProviderConfig
from ccrouter.errors import (
    CCRouterError,
    PoolExhaustedError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeoutError,
    upstream_error_for_status,
)
from ccrouter.messages import MessagesRequest, MessagesResponse, StreamError, StreamEvent
from ccrouter.providers.base import (
    CallAuth,
    ErrorAnswers,
    ErrorStatuses,
    FramedStreams,
    Framer,
    HttpCall,
    WireAdapter,
)
from ccrouter.providers.deadline import CallDeadline, DeadlineConnector
from ccrouter.providers.proxy import EgressProxy
from ccrouter.telemetry.redact import Redactor

__all__ = ["HttpProvider", "ResponseHeadersHook", "new_session", "parse_retry_after"]

# Told (model, response headers) for every response head, success or error: live routing state reads
# the announced rate limits from it without widening the Provider protocol.
ResponseHeadersHook = Callable[[str, Mapping[str, str]], None]

# Bodies of error responses are read up to this size: enough for any provider's error envelope.
_MAX_ERROR_BODY = 64 * 1024


def new_session(config: ProviderConfig | None = None, *, limit: int | None = None) -> aiohttp.ClientSession:
    """A pooled keep-alive session; one per provider so one slow provider cannot starve another.
    Its pool holds ``limit`` connections, else ``config.pool_size`` (else ``DEFAULT_POOL_SIZE``)."""
    if limit is None:
        limit = config.pool_size if config is not None else DEFAULT_POOL_SIZE
    # DeadlineConnector tells each call's CallDeadline when it has its connection (first_byte counts
    # from there) and when it waits for a free slot of the pool.
    connector = DeadlineConnector(
        limit=limit,
        keepalive_timeout=60,
        enable_cleanup_closed=True,
        name=config.name if config is not None else "",
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None),
        # aiohttp (>= 3.13.3) inflates gzip/deflate a bounded step at a time, as the body is read, so
        # counting the bytes read (``ResponseLimits``) bounds the inflated size too. It advertises only
        # the encodings it can decode; any other encoding fails the read (a ClientPayloadError).
        auto_decompress=True,
        # Responses are read as bytes and parsed by our codecs; nothing needs aiohttp's JSON or cookies.
        cookie_jar=aiohttp.DummyCookieJar(),
    )


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if value else None
        if when is None:
            return None
        return max(0.0, when.timestamp() - time.time())


class HttpProvider:
    """A provider reached over HTTP through a ``WireAdapter``."""

    def __init__(
        self,
        config: ProviderConfig,
        adapter: WireAdapter,
        session: aiohttp.ClientSession,
        *,
        on_headers: ResponseHeadersHook | None = None,
        auth: CallAuth | None = None,
    ) -> None:
        """``auth``: headers awaited before each call (a refreshed token), closed with the provider."""
        self.name = config.name
        self._auth = auth
        self._on_headers = on_headers
        self.wire = adapter.wire
        self.config = config
        self._adapter = adapter
        self._answers = adapter if isinstance(adapter, ErrorAnswers) else None
        self._framed = adapter if isinstance(adapter, FramedStreams) else None
        self._statuses = adapter if isinstance(adapter, ErrorStatuses) else None
        self._session = session
        self._timeouts = config.timeouts
        self._limits = config.limits
        # aiohttp's own timer only bounds connecting; ``CallDeadline`` bounds each call's waits.
        self._client_timeout = aiohttp.ClientTimeout(total=None, sock_connect=config.timeouts.connect)
        # Provider error text is passed on to clients and logs; a provider that echoes our key back
        # (whole, its start, or masked) must not leak it. The same Redactor rules as the logs.
        self._redactor = Redactor(secret.get_secret_value() for secret in config.secrets())
        # Decided now, from the config and the environment as they are (None: every call goes direct,
        # and costs nothing more); its credentials never appear in an error.
        self._egress = EgressProxy.open(config)

    async def complete(self, request: MessagesRequest, model: str) -> MessagesResponse:
        call = self._adapter.build(request, model, stream=False)
        if self._auth is not None:
            call.headers.update(await self._auth.headers())
        try:
            async with CallDeadline(self._timeouts, total=True) as deadline:
                response = await self._open(call, model)
                deadline.answered()
                if isinstance(response, MessagesResponse):
                    return response
                async with response:
                    body = await self._read_body(response)
        except aiohttp.ClientError as exc:  # first: aiohttp's own timeouts are TimeoutErrors too
            if deadline.limit == "pool":  # aiohttp wraps what the pool raised in its own error
                raise self._timeout_error(deadline) from exc
            raise self._connection_error(exc) from exc
        except TimeoutError as exc:
            raise self._timeout_error(deadline) from exc
        return self._adapter.parse_response(body, call)

    async def stream(self, request: MessagesRequest, model: str) -> AsyncIterator[list[StreamEvent]]:
        try:
            async for events in self._stream(request, model):
                if self._redactor:
                    events = [self._scrub_event(event) for event in events]
                yield events
        except CCRouterError as exc:
            if isinstance(exc, UpstreamError) and not exc.provider:  # raised by a codec
                exc.provider = self.name
                exc.message = f"{self.name}: {exc.message}"
            exc.message = self._redactor.text(exc.message)
            exc.args = (exc.message,)
            raise

    def _scrub_event(self, event: StreamEvent) -> StreamEvent:
        if isinstance(event, StreamError):
            clean = self._redactor.text(event.message)
            if clean != event.message:
                return StreamError(error_type=event.error_type, message=clean)
        return event

    async def _stream(self, request: MessagesRequest, model: str) -> AsyncIterator[list[StreamEvent]]:
        call = self._adapter.build(request, model, stream=True)
        if self._auth is not None:
            call.headers.update(await self._auth.headers())
        decoder = self._adapter.stream_decoder(call)
        parser: Framer
        if self._framed is None:
            parser = SSEParser(self._limits.max_frame_bytes)
        else:
            parser = self._framed.framer(call, self._limits.max_frame_bytes)
        try:
            async with CallDeadline(self._timeouts, total=False) as deadline:
                response = await self._open(call, model)
        except aiohttp.ClientError as exc:  # first: aiohttp's own timeouts are TimeoutErrors too
            if deadline.limit == "pool":  # aiohttp wraps what the pool raised in its own error
                raise self._timeout_error(deadline) from exc
            raise self._connection_error(exc) from exc
        except TimeoutError as exc:
            raise self._timeout_error(deadline) from exc
        # Sent in full (the head came back): a stream holds its connection for minutes, it need not
        # hold the ~100 KB body as well (bench/concurrency.py: memory per open stream).
        call.body = b""
        if isinstance(response, MessagesResponse):
            yield response_events(response)
            return
        async with response, contextlib.aclosing(self._chunks(response.content)) as chunks:
            async for chunk in chunks:
                events: list[StreamEvent] = []
                try:
                    for frame in parser.feed(chunk):
                        events.extend(decoder.feed(frame))
                except CCRouterError:
                    if events:  # what was decoded before the bad frame still goes out first
                        yield events
                    raise
                if events:
                    yield events
            events = []
            try:
                for frame in parser.flush():
                    events.extend(decoder.feed(frame))
                events.extend(decoder.finish())
            except CCRouterError:
                if events:
                    yield events
                raise
            if events:
                yield events

    async def _chunks(self, content: aiohttp.StreamReader) -> AsyncGenerator[bytes, None]:
        """The body as it arrives; UpstreamTimeoutError when nothing comes for ``timeouts.idle``.

        One timer for the whole stream, armed around each read only: never while the consumer
        holds a chunk (a slow client is not an idle upstream). Re-arming it costs less than a new
        timeout context per chunk, and providers send hundreds of chunks."""
        idle = self._timeouts.idle
        loop = asyncio.get_running_loop()
        reading = asyncio.timeout(None)
        try:
            async with reading:
                while True:
                    reading.reschedule(loop.time() + idle)
                    try:
                        chunk = await content.readany()
                    except aiohttp.ClientError as exc:
                        raise self._connection_error(exc) from exc
                    reading.reschedule(None)
                    if not chunk:
                        return
                    yield chunk
        except TimeoutError as exc:
            raise UpstreamTimeoutError(
                f"{self.name}: stream idle for more than {idle:g}s", provider=self.name
            ) from exc

    async def aclose(self) -> None:
        await self._session.close()
        if self._auth is not None:
            await self._auth.aclose()

    async def _open(self, call: HttpCall, model: str) -> aiohttp.ClientResponse | MessagesResponse:
        """POST the call and wait for the response head; raise the mapped error on an error status,
        or return the answer it stands for (``ErrorAnswers``). The caller holds the ``CallDeadline``
        and maps timeouts and aiohttp errors."""
        response = await self._session.post(
            URL(call.url, encoded=True) if call.encoded else call.url,
            data=call.body,
            headers=call.headers,
            timeout=self._client_timeout,
            # Never: a redirect would carry our key (and on 307/308 the prompt) to another host.
            allow_redirects=False,
            proxy=None if self._egress is None else self._egress.for_url(call.url),
        )
        if self._on_headers is not None:
            self._on_headers(model, response.headers)
        if 300 <= response.status < 400:
            response.close()  # unread: the connection is not reused
            # A 502 like any unreadable answer, so dispatch moves on to the next configured candidate;
            # the redirect target itself is never contacted.
            raise UpstreamProtocolError(
                f"{self.name}: answered {response.status} (a redirect); provider redirects are not "
                "followed, check the provider's base_url",
                provider=self.name,
            )
        if response.status == 407 and self._egress is not None:
            response.close()
            # From the egress proxy, not the provider (an http URL is forwarded, so the proxy answers in
            # its place): a connection failure, as a refused CONNECT is, and dispatch moves on.
            raise UpstreamConnectionError(
                f"{self.name}: the egress proxy refused the request (407 Proxy Authentication Required)",
                provider=self.name,
            )
        if response.status >= 400:
            async with response:
                try:
                    body = await response.content.read(_MAX_ERROR_BODY)
                except aiohttp.ClientError:
                    body = b""
            if self._answers is not None:
                answer = self._answers.answer_for_error(response.status, body, call)
                if answer is not None:
                    return answer
            status = response.status
            if self._statuses is None:
                text = self._adapter.error_message(status, body)
            else:
                status, text = self._statuses.error_status(status, body, response.headers)
            message = self._redactor.text(text)
            raise upstream_error_for_status(
                status,
                f"{self.name}: {message}",
                provider=self.name,
                retry_after=parse_retry_after(response.headers),
            )
        return response

    async def _read_body(self, response: aiohttp.ClientResponse) -> bytes:
        """The whole (decompressed) body, or UpstreamProtocolError once it passes ``max_body_bytes``."""
        limit = self._limits.max_body_bytes
        length = response.content_length
        if length is not None and length <= limit and "content-encoding" not in response.headers:
            # The parser reads exactly content-length bytes: within the limit as it is (most replies).
            return await response.read()
        chunks: list[bytes] = []
        size = 0
        content = response.content
        while chunk := await content.readany():
            size += len(chunk)
            if size > limit:
                raise UpstreamProtocolError(
                    f"{self.name}: response body larger than {limit} bytes (limits.max_body_bytes)",
                    provider=self.name,
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _timeout_error(self, deadline: CallDeadline) -> UpstreamError:
        timeouts = self._timeouts
        if deadline.limit == "pool":
            return PoolExhaustedError(
                f"{self.name}: all {deadline.pool_size} connections of the gateway's pool to it are in "
                f"use and none is expected free within timeouts.first_byte ({timeouts.first_byte:g}s); "
                "raise providers[].pool_size if the provider takes more concurrent requests",
                provider=self.name,
            )
        if deadline.limit == "connect":
            return UpstreamConnectionError(
                f"{self.name}: not connected within {timeouts.connect:g}s", provider=self.name
            )
        if deadline.limit == "first_byte":
            return UpstreamTimeoutError(
                f"{self.name}: no response within {timeouts.first_byte:g}s", provider=self.name
            )
        return UpstreamTimeoutError(
            f"{self.name}: no complete response within {timeouts.total:g}s", provider=self.name
        )

    def _connection_error(self, exc: aiohttp.ClientError) -> UpstreamError:
        # aiohttp's messages name host and port, never headers, so they are safe to pass on; but a
        # proxy's errors quote its URL, credentials included.
        text = str(exc) if self._egress is None else self._egress.scrub(str(exc))
        return UpstreamConnectionError(
            f"{self.name}: connection failed ({type(exc).__name__}: {text})", provider=self.name
        )
