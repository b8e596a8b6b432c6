"""One timer per provider call, moved as the call advances, so each limit means what ``Timeouts`` says.

Getting a connection (pool wait, TCP, TLS) is bounded by ``connect``; from when the connection is
ready and the request goes out on it, the wait for the response head by ``first_byte``; a
non-streamed call as a whole by ``total``. The move from connecting to waiting is told by the
session's connector (``DeadlineConnector``, which ``providers.http.new_session`` installs) to the
``CallDeadline`` of the calling task, through a context variable: a few hundred nanoseconds per call,
where an aiohttp ``TraceConfig`` would send a dozen signals per request.
"""

from __future__ import annotations

import asyncio
import math
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Literal

import aiohttp
from aiohttp.connector import Connection
from aiohttp.tracing import Trace

from ccrouter.config import Timeouts

__all__ = ["CallDeadline", "DeadlineConnector", "Limit"]

Limit = Literal["connect", "first_byte", "total"]

_CURRENT: ContextVar[CallDeadline | None] = ContextVar("ccrouter_call_deadline", default=None)


class DeadlineConnector(aiohttp.TCPConnector):
    """A ``TCPConnector`` that tells the calling task's ``CallDeadline`` when its connection is ready
    (taken from the pool, or connected and through TLS)."""

    async def connect(  # the signature is aiohttp's: its timeout is how it bounds the connect
        self,
        req: aiohttp.ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109
    ) -> Connection:
        connection = await super().connect(req, traces, timeout)
        deadline = _CURRENT.get()
        if deadline is not None:
            deadline.connected()
        return connection


class CallDeadline:
    """``async with CallDeadline(timeouts, total=...) as deadline:`` around the call; after its
    ``TimeoutError``, ``limit`` says which limit was reached."""

    __slots__ = ("_end", "_first_byte", "_loop", "_timer", "_token", "limit")

    def __init__(self, timeouts: Timeouts, *, total: bool) -> None:
        self._loop = asyncio.get_running_loop()
        now = self._loop.time()
        self._first_byte = timeouts.first_byte
        self._end = now + timeouts.total if total else math.inf
        self.limit: Limit = "connect"
        connected_by = now + timeouts.connect
        if connected_by >= self._end:
            self.limit, connected_by = "total", self._end
        self._timer = asyncio.timeout_at(connected_by)
        self._token: Token[CallDeadline | None] | None = None

    async def __aenter__(self) -> CallDeadline:
        await self._timer.__aenter__()
        self._token = _CURRENT.set(self)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._token is not None:
            _CURRENT.reset(self._token)
            self._token = None
        await self._timer.__aexit__(exc_type, exc, tb)

    def connected(self) -> None:
        """The connection is ready and the request goes out: from now, wait ``first_byte``."""
        if self.limit == "connect":
            self._move("first_byte", self._loop.time() + self._first_byte)

    def answered(self) -> None:
        """The response head arrived: only ``total`` (if any) bounds what follows."""
        self.limit = "total"
        self._timer.reschedule(None if math.isinf(self._end) else self._end)

    def _move(self, limit: Limit, deadline: float) -> None:
        if deadline >= self._end:
            limit, deadline = "total", self._end
        self.limit = limit
        self._timer.reschedule(deadline)
