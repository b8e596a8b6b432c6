"""A small forward HTTP proxy on loopback, for testing egress proxies (``providers[].proxy``,
``HTTPS_PROXY``)::

    async with ForwardProxy(auth=("user", "secret")) as proxy:
        ...  # HTTPS_PROXY=proxy.url (or proxy.url_with_auth); requests then show in proxy.seen

It tunnels ``CONNECT host:port`` (what a client does for an https URL) and forwards absolute-form
requests (``POST http://host:port/path``, an http URL) with ``Connection: close``, one request per
client connection. Every request is recorded (``seen``, ``count``); with ``auth`` one without the
right ``Proxy-Authorization: Basic`` is answered 407 and recorded in ``refused``. Bounded: a request
head of at most 64 KiB, ``timeout`` seconds to send it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit

__all__ = ["ForwardProxy", "ProxiedRequest"]

_MAX_HEAD = 64 * 1024
_PIPE_CHUNK = 64 * 1024
_HOP_HEADERS = frozenset({"proxy-authorization", "proxy-connection", "connection", "keep-alive"})


@dataclass(frozen=True, slots=True)
class ProxiedRequest:
    """One request the proxy received: ``CONNECT`` (``target`` is host:port) or a forwarded one
    (``target`` host:port, ``path`` the request path)."""

    method: str
    target: str
    path: str = ""
    proxy_authorization: str | None = None


class ForwardProxy:
    """The proxy server. ``async with ForwardProxy() as proxy:`` or ``await start()`` / ``stop()``."""

    def __init__(self, *, auth: tuple[str, str] | None = None, timeout: float = 10.0) -> None:
        self.auth = auth
        self.timeout = timeout
        self.seen: list[ProxiedRequest] = []
        self.refused: list[ProxiedRequest] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._url: str | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:port``, without credentials."""
        if self._url is None:
            raise RuntimeError("the forward proxy is not started")
        return self._url

    @property
    def url_with_auth(self) -> str:
        """The URL with ``auth``'s user and password in it (``http://user:pass@127.0.0.1:port``)."""
        if self.auth is None:
            return self.url
        user, password = self.auth
        return self.url.replace("http://", f"http://{user}:{password}@", 1)

    def count(self, target: str | None = None) -> int:
        """Requests accepted, for one ``host:port`` or all."""
        return sum(1 for seen in self.seen if target is None or seen.target == target)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, host, port, limit=_MAX_HEAD)
            bound_host, bound_port = self._server.sockets[0].getsockname()[:2]
            self._url = f"http://{bound_host}:{bound_port}"
        return self.url

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await server.wait_closed()
        self._url = None

    async def __aenter__(self) -> ForwardProxy:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- serving ----------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handle(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, TimeoutError):
            pass  # a client or target gone, or a malformed head: the connection just ends
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with asyncio.timeout(self.timeout):
            head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, version = request_line.split(" ", 2)
        headers = [line.split(":", 1) for line in header_lines if ":" in line]
        auth = next((value.strip() for name, value in headers if name.lower() == "proxy-authorization"), None)
        if method == "CONNECT":
            record = ProxiedRequest("CONNECT", target, proxy_authorization=auth)
        else:
            parts = urlsplit(target)
            if parts.scheme != "http" or not parts.hostname:
                writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            record = ProxiedRequest(method, f"{parts.hostname}:{parts.port or 80}", path, auth)
        if not self._authorised(auth):
            self.refused.append(record)
            writer.write(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="ccrouter-test"\r\nContent-Length: 0\r\n'
                b"Connection: close\r\n\r\n"
            )
            return
        self.seen.append(record)
        host, _, port = record.target.rpartition(":")
        try:
            async with asyncio.timeout(self.timeout):
                up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
        except (OSError, TimeoutError):
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        try:
            if method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                kept = [f"{name}:{value}" for name, value in headers if name.lower() not in _HOP_HEADERS]
                lines = [f"{method} {record.path} {version}", *kept, "Connection: close", "", ""]
                up_writer.write("\r\n".join(lines).encode("latin-1"))
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()
            with contextlib.suppress(OSError):
                await up_writer.wait_closed()

    def _authorised(self, header: str | None) -> bool:
        if self.auth is None:
            return True
        scheme, _, encoded = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            offered = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return offered == f"{self.auth[0]}:{self.auth[1]}"


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until ``source`` ends (or either side fails), then end ``sink``'s writing side."""
    try:
        while chunk := await source.read(_PIPE_CHUNK):
            sink.write(chunk)
            await sink.drain()
    except OSError:
        pass  # reset by either peer: the other direction ends on its own
    finally:
        if sink.can_write_eof():
            with contextlib.suppress(OSError):
                sink.write_eof()
