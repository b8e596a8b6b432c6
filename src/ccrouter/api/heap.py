"""Giving back to the system the heap that a huge request body grew.

A multi-megabyte body is read, split, parsed and translated: tens of megabytes of short-lived
objects. When they are freed, glibc keeps the pages for reuse instead of unmapping them, so the
gateway's RSS stays at its high-water mark (after 20 bodies of 3-5 MB: +70 MB, for good). Shortly
after the last large body, ``HeapTrimmer`` calls glibc's ``malloc_trim(0)`` in a worker thread,
which returns the free pages of every arena (about 10-30 ms of work, off the event loop). Elsewhere
(musl, macOS) there is no ``malloc_trim`` and this does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
from collections.abc import Callable

__all__ = ["HeapTrimmer"]

log = logging.getLogger("ccrouter.api")

# Bodies at least this large make a trim due; the trim waits for this long a pause in them.
LARGE_BODY = 1024 * 1024
DELAY_S = 1.0


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


class HeapTrimmer:
    """``after_body(size)`` once per request body; trims once large bodies pause for ``delay_s``."""

    def __init__(self, *, large: int = LARGE_BODY, delay_s: float = DELAY_S) -> None:
        self._trim = _malloc_trim()
        self._large = large
        self._delay_s = delay_s
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Future[int]] = set()
        self.trims = 0

    def after_body(self, size: int) -> None:
        if self._trim is None or size < self._large:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self._delay_s, self._start)

    def _start(self) -> None:
        self._timer = None
        assert self._trim is not None
        future = asyncio.ensure_future(asyncio.to_thread(self._trim, 0))
        self._running.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: asyncio.Future[int]) -> None:
        self._running.discard(future)
        self.trims += 1
        if not future.cancelled() and future.exception() is not None:
            log.warning("malloc_trim failed: %s", future.exception())

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
