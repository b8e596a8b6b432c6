"""The HTTP transport every wire adapter shares: pooled aiohttp session, timeouts, error mapping.

``HttpProvider`` joins a pure ``WireAdapter`` (what to send, how to read it) with the network. All
foreign errors (aiohttp, asyncio timeouts) are mapped to ``ccrouter.errors`` here and only here.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator, Mapping

import aiohttp

from ccrouter.codecs.sse import SSEParser
from ccrouter.config import ProviderConfig
from ccrouter.errors import (
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeoutError,
    upstream_error_for_status,
)
from ccrouter.messages import MessagesRequest, MessagesResponse, StreamEvent
from ccrouter.providers.base import HttpCall, WireAdapter

__all__ = ["HttpProvider", "new_session", "parse_retry_after"]

# Bodies of error responses are read up to this size: enough for any provider's error envelope.
_MAX_ERROR_BODY = 64 * 1024


def new_session(*, limit: int = 256) -> aiohttp.ClientSession:
    """A pooled keep-alive session; one per provider so one slow provider cannot starve another."""
    connector = aiohttp.TCPConnector(limit=limit, keepalive_timeout=60, enable_cleanup_closed=True)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None),
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

    def __init__(self, config: ProviderConfig, adapter: WireAdapter, session: aiohttp.ClientSession) -> None:
        self.name = config.name
        self.wire = adapter.wire
        self.config = config
        self._adapter = adapter
        self._session = session
        self._timeouts = config.timeouts

    async def complete(self, request: MessagesRequest, model: str) -> MessagesResponse:
        call = self._adapter.build(request, model, stream=False)
        try:
            async with asyncio.timeout(self._timeouts.total):
                response = await self._open(call)
                async with response:
                    body = await response.read()
        except TimeoutError as exc:
            raise UpstreamTimeoutError(
                f"{self.name}: no complete response within {self._timeouts.total:g}s", provider=self.name
            ) from exc
        except aiohttp.ClientError as exc:
            raise self._connection_error(exc) from exc
        return self._adapter.parse_response(body, call)

    async def stream(self, request: MessagesRequest, model: str) -> AsyncIterator[StreamEvent]:
        call = self._adapter.build(request, model, stream=True)
        decoder = self._adapter.stream_decoder(call)
        parser = SSEParser()
        idle = self._timeouts.idle
        response = await self._open(call)
        async with response:
            content = response.content
            while True:
                try:
                    async with asyncio.timeout(idle):
                        chunk = await content.readany()
                except TimeoutError as exc:
                    raise UpstreamTimeoutError(
                        f"{self.name}: stream idle for more than {idle:g}s", provider=self.name
                    ) from exc
                except aiohttp.ClientError as exc:
                    raise self._connection_error(exc) from exc
                if not chunk:
                    break
                for frame in parser.feed(chunk):
                    for event in decoder.feed(frame):
                        yield event
            for frame in parser.flush():
                for event in decoder.feed(frame):
                    yield event
        for event in decoder.finish():
            yield event

    async def aclose(self) -> None:
        await self._session.close()

    async def _open(self, call: HttpCall) -> aiohttp.ClientResponse:
        """POST the call and wait for the response head; raise the mapped error on an error status."""
        timeouts = self._timeouts
        try:
            async with asyncio.timeout(timeouts.connect + timeouts.first_byte):
                response = await self._session.post(
                    call.url,
                    data=call.body,
                    headers=call.headers,
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeouts.connect),
                )
        except TimeoutError as exc:
            raise UpstreamTimeoutError(
                f"{self.name}: no response within {timeouts.connect + timeouts.first_byte:g}s",
                provider=self.name,
            ) from exc
        except aiohttp.ClientError as exc:
            raise self._connection_error(exc) from exc
        if response.status >= 400:
            async with response:
                try:
                    body = await response.content.read(_MAX_ERROR_BODY)
                except aiohttp.ClientError:
                    body = b""
            message = self._adapter.error_message(response.status, body)
            raise upstream_error_for_status(
                response.status,
                f"{self.name}: {message}",
                provider=self.name,
                retry_after=parse_retry_after(response.headers),
            )
        return response

    def _connection_error(self, exc: aiohttp.ClientError) -> UpstreamError:
        # aiohttp's messages name host and port, never headers, so they are safe to pass on.
        return UpstreamConnectionError(
            f"{self.name}: connection failed ({type(exc).__name__}: {exc})", provider=self.name
        )
