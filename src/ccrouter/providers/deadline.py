"""One timer per provider call, moved as the call advances, so each limit means what ``Timeouts`` says.

Connecting (pool wait, TCP, TLS) is bounded by ``connect``; once the request's head is written on the
connected socket, the wait for the response head by ``first_byte``; a non-streamed call as a whole by
``total``. The move from connecting to waiting is told by aiohttp's ``on_request_headers_sent`` trace
signal (``SENT_TRACE``), which the session from ``providers.http.new_session`` carries.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from types import SimpleNamespace, TracebackType
from typing import Any, Literal

import aiohttp

from ccrouter.config import Timeouts

__all__ = ["SENT_TRACE", "CallDeadline", "Limit"]

Limit = Literal["connect", "first_byte", "total"]


async def _headers_sent(session: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
    sent: Callable[[], None] | None = context.trace_request_ctx
    if sent is not None:
        sent()


# The session-wide hook; a call opts in by passing ``trace_request_ctx=deadline.sent``.
SENT_TRACE = aiohttp.TraceConfig()
SENT_TRACE.on_request_headers_sent.append(_headers_sent)
SENT_TRACE.freeze()


class CallDeadline:
    """``async with CallDeadline(timeouts, total=...) as deadline:`` around the call; after its
    ``TimeoutError``, ``limit`` says which limit was reached."""

    __slots__ = ("_end", "_first_byte", "_loop", "_timer", "limit")

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

    async def __aenter__(self) -> CallDeadline:
        await self._timer.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._timer.__aexit__(exc_type, exc, tb)

    def sent(self) -> None:
        """The request's head is on a connected socket: from now, wait ``first_byte`` for the answer."""
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
