"""One credential refresh at a time: every caller awaits the refresh in flight, or starts one.

Shared by the token and credential sources that refresh in a thread (``google_tokens``,
``aws_credentials``). A caller gives up after ``wait`` seconds with an ``UpstreamError``; the refresh
itself goes on (shielded), so the next caller can still use its outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from ccrouter.errors import UpstreamError

__all__ = ["SingleFlight"]

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """``await flight()``: the outcome of ``run`` in flight, or of a new one."""

    def __init__(self, run: Callable[[], Awaitable[T]], *, wait: float, provider: str, what: str) -> None:
        """``what`` names the result in the timeout's message ("AWS credentials")."""
        self._run = run
        self._wait = wait
        self._provider = provider
        self._what = what
        self._inflight: asyncio.Future[T] | None = None

    async def __call__(self) -> T:
        inflight = self._inflight
        if inflight is None or inflight.done():
            inflight = self._inflight = asyncio.ensure_future(self._run())
            # Read its outcome even when every waiter gave up (no "exception never retrieved").
            inflight.add_done_callback(lambda done: done.cancelled() or done.exception())
        try:
            async with asyncio.timeout(self._wait):
                return await asyncio.shield(inflight)
        except TimeoutError as exc:
            raise UpstreamError(
                f"{self._provider}: no {self._what} within {self._wait:g}s", provider=self._provider
            ) from exc
