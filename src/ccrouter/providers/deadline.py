"""One timer per provider call, moved as the call advances, so each limit means what ``Timeouts`` says.

Connecting (TCP, TLS) is bounded by ``connect``; from when the connection is ready and the request
goes out on it, the wait for the response head by ``first_byte``; a non-streamed call as a whole by
``total``. A wait for a free slot of the provider's connection pool (``providers[].pool_size``, all
its connections busy with other calls, streams mostly) is a wait for the provider too: it is bounded
by ``first_byte``, and a call that may fail over (the cascade has another candidate) does not wait
at all when the wait it can expect is longer than that (Little's law over the pool: the calls queued
ahead of it times the mean time a connection is held, over the pool's size). The pool wait, and how it
ended, is told to the calling attempt (``use_pool``): metrics, the log and the route explanation
read it. The move from connecting to waiting is told by the
session's connector (``DeadlineConnector``, which ``providers.http.new_session`` installs) to the
``CallDeadline`` of the calling task, through a context variable: a few hundred nanoseconds per call,
where an aiohttp ``TraceConfig`` would send a dozen signals per request.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, Literal

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.connector import Connection
from aiohttp.tracing import Trace

from ccrouter.config import Timeouts

__all__ = ["CallDeadline", "DeadlineConnector", "Limit", "PoolOutcome", "PoolReport", "use_pool"]

log = logging.getLogger("ccrouter.providers")

Limit = Literal["connect", "pool", "first_byte", "total"]
# How a call that found its provider's pool full went on: it got a slot after ``waited``; it went to
# the next candidate at once (``failed_over``); its wait reached ``first_byte`` (``timed_out``).
PoolOutcome = Literal["waited", "failed_over", "timed_out"]
# Told (outcome, seconds waited) when a call found the pool full.
PoolReport = Callable[[PoolOutcome, float], None]

_CURRENT: ContextVar[CallDeadline | None] = ContextVar("ccrouter_call_deadline", default=None)
# Set per attempt by the cascade: whether the attempt may fail over, and who hears of a pool wait.
_POOL_USE: ContextVar[tuple[bool, PoolReport | None]] = ContextVar("ccrouter_pool_use", default=(False, None))
# The mean time a connection is held is smoothed over about this many releases.
_HOLD_SMOOTHING = 0.05
# A full pool is logged once, then at most once per this many seconds (with the count between).
_LOG_EVERY_S = 60.0


def use_pool(*, fail_over: bool, report: PoolReport | None) -> None:
    """For the provider calls the current task makes from now: ``fail_over``: another candidate
    can serve the request, so a long pool wait is skipped; ``report``: told of any pool wait."""
    _POOL_USE.set((fail_over, report))


class DeadlineConnector(aiohttp.TCPConnector):
    """A ``TCPConnector`` that tells the calling task's ``CallDeadline`` when its connection is ready
    (taken from the pool, or connected and through TLS), and when it has to wait for a free slot
    of the pool first. ``name``: the provider's, for the log."""

    def __init__(self, *args: Any, name: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.name = name
        self._since: dict[ResponseHandler, float] = {}
        # None until a connection was given back: nothing is known of how long calls hold one.
        self.mean_hold_s: float | None = None
        self._logged_at = -math.inf
        self._unlogged = 0

    async def connect(  # the signature is aiohttp's: its timeout is how it bounds the connect
        self,
        req: aiohttp.ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109
    ) -> Connection:
        connection = await super().connect(req, traces, timeout)
        if self.limit and connection.protocol is not None:
            self._since[connection.protocol] = time.monotonic()
        deadline = _CURRENT.get()
        if deadline is not None:
            deadline.connected()
        return connection

    def expected_wait_s(self) -> float:
        """What a call queued now can expect to wait for a slot (inf: no connection was ever freed)."""
        if self.mean_hold_s is None or not self.limit:
            return math.inf
        queued = sum(len(waiters) for waiters in self._waiters.values())
        return self.mean_hold_s * (queued + 1) / self.limit

    async def _wait_for_available_connection(self, key: Any, traces: list[Trace]) -> None:
        # aiohttp calls this only when every slot of the pool is taken (``limit`` reached).
        self._note_full()
        deadline = _CURRENT.get()
        if deadline is None:
            await super()._wait_for_available_connection(key, traces)
            return
        deadline.pool_full(self.expected_wait_s(), self.limit)
        await super()._wait_for_available_connection(key, traces)
        deadline.pool_slot()

    def _release_acquired(self, key: Any, proto: ResponseHandler) -> None:
        since = self._since.pop(proto, None)
        if since is not None:
            held = time.monotonic() - since
            mean = self.mean_hold_s
            self.mean_hold_s = held if mean is None else mean + _HOLD_SMOOTHING * (held - mean)
        super()._release_acquired(key, proto)

    def _note_full(self) -> None:
        now = time.monotonic()
        self._unlogged += 1
        if now - self._logged_at >= _LOG_EVERY_S:
            log.warning(
                "provider %s: all %d connections of its pool are in use; %d call(s) found it full "
                "since the last notice (mean hold %.1f s). Raise providers[].pool_size if the "
                "provider accepts more concurrent requests",
                self.name,
                self.limit,
                self._unlogged,
                self.mean_hold_s or 0.0,
            )
            self._logged_at, self._unlogged = now, 0


class CallDeadline:
    """``async with CallDeadline(timeouts, total=...) as deadline:`` around the call; after its
    ``TimeoutError``, ``limit`` says which limit was reached."""

    __slots__ = (
        "_connect",
        "_end",
        "_fail_over",
        "_first_byte",
        "_loop",
        "_report",
        "_timer",
        "_token",
        "_waiting_since",
        "limit",
        "pool_size",
    )

    def __init__(self, timeouts: Timeouts, *, total: bool) -> None:
        self._loop = asyncio.get_running_loop()
        now = self._loop.time()
        self._first_byte = timeouts.first_byte
        self._connect = timeouts.connect
        self._fail_over, self._report = _POOL_USE.get()
        self._waiting_since: float | None = None
        # Set when the pool was found full: its size, for the error message.
        self.pool_size = 0
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
        try:
            await self._timer.__aexit__(exc_type, exc, tb)
        except TimeoutError:
            if self.limit == "pool" and self._waiting_since is not None:
                self._tell("timed_out", self._loop.time() - self._waiting_since)
            raise

    def pool_full(self, expected_wait_s: float, pool_size: int) -> None:
        """Every connection of the pool is taken: fail over now (``TimeoutError``, ``limit`` "pool")
        when the call may and the expected wait passes ``first_byte``; else wait up to ``first_byte``."""
        self.pool_size = pool_size
        if self.limit != "connect":  # only before the call's connection is ready
            return
        if self._fail_over and expected_wait_s > self._first_byte:
            self.limit = "pool"
            self._tell("failed_over", 0.0)
            raise TimeoutError
        now = self._loop.time()
        self._waiting_since = now
        self._move("pool", now + self._first_byte)

    def pool_slot(self) -> None:
        """A slot is free after the wait: the connect limit starts now."""
        since, self._waiting_since = self._waiting_since, None
        if since is None:
            return
        now = self._loop.time()
        self._tell("waited", now - since)
        self._move("connect", now + self._connect)

    def _tell(self, outcome: PoolOutcome, seconds: float) -> None:
        if self._report is not None:
            self._report(outcome, seconds)

    def connected(self) -> None:
        """The connection is ready and the request goes out: from now, wait ``first_byte``."""
        if self.limit in ("connect", "pool"):
            self._waiting_since = None
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
