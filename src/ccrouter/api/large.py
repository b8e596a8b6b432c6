"""Few large bodies worked on at once, so that small requests are not queued behind them.

Measured (50 concurrent 1 MB bodies, one gateway process): the event loop is busy about 0.8 s in
all, reading the bodies (aiohttp's parser and buffer joins, ~40%), splitting and decoding them
(~15%), translating and writing them upstream (~25%). Each large request does that in slices of a
millisecond or two between awaits, and the loop runs its ready callbacks in turn: with 50 large
requests in flight every turn of the loop costs ~100 ms, and a small request, which needs several
turns, waited 0.4-1.2 s. ``LargeBodies`` lets at most ``slots`` requests with a large body read,
decode and plan at once; the others wait before reading, so aiohttp stops reading their sockets
(flow control) and they cost the loop nothing until their turn. A small body never waits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

__all__ = ["LargeBodies"]

# Bodies from this size (or of unknown size) take a slot; a Claude Code request is ~100-300 KB.
LARGE_BODY = 512 * 1024
SLOTS = 2


class LargeBodies:
    def __init__(self, *, large: int = LARGE_BODY, slots: int = SLOTS) -> None:
        self._large = large
        self._slots = asyncio.Semaphore(slots)

    @contextlib.asynccontextmanager
    async def turn(self, content_length: int | None) -> AsyncIterator[None]:
        """Hold a slot for the body's reading and decoding when it is large."""
        if content_length is not None and content_length < self._large:
            yield
            return
        async with self._slots:
            yield
