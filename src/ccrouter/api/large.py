"""Few large bodies worked on at once, so that small requests are not queued behind them.

Measured (50 concurrent 1 MB bodies, one gateway process): the event loop is busy about 0.8 s in
all, reading the bodies (aiohttp's parser and buffer joins, ~40%), splitting and decoding them
(~15%), translating and writing them upstream (~25%). Each large request does that in slices of a
millisecond or two between awaits, and the loop runs its ready callbacks in turn: with 50 large
requests in flight every turn of the loop costs ~100 ms, and a small request, which needs several
turns, waited 0.4-1.2 s. ``LargeBodies`` lets at most ``slots`` requests with a large body read,
decode and plan at once; the others wait before reading, so aiohttp stops reading their sockets
(flow control) and they cost the loop nothing until their turn. A small body never waits.

A slot is waited for at most ``max_wait`` seconds, then the body is read anyway: clients that send
their large bodies slowly (a body may take up to ``server.body_timeout_s``) hold the slots while they
trickle in, and must not hold every other large request back for that long.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager

__all__ = ["LargeBodies"]

# Bodies from this size (or of unknown size) take a slot; a Claude Code request is ~100-300 KB.
LARGE_BODY = 512 * 1024
SLOTS = 2
# Fifty 1 MB bodies take the loop ~0.8 s in all, so a fair wait is well under this.
MAX_WAIT_S = 2.0


class LargeBodies:
    def __init__(self, *, large: int = LARGE_BODY, slots: int = SLOTS, max_wait: float = MAX_WAIT_S) -> None:
        self._large = large
        self._slots = asyncio.Semaphore(slots)
        self._max_wait = max_wait

    def turn(self, content_length: int | None) -> AbstractAsyncContextManager[None]:
        """Hold a slot for the body's reading and decoding when it is large (waiting for one at most
        ``max_wait`` seconds). A small body gets a context that does nothing (every request takes
        this path: a plain object, not a generator-based context manager, ~10x cheaper)."""
        if content_length is not None and content_length < self._large:
            return _NO_SLOT
        return _Slot(self)


class _NoSlot:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


_NO_SLOT = _NoSlot()


class _Slot:
    __slots__ = ("_bodies", "_held")

    def __init__(self, bodies: LargeBodies) -> None:
        self._bodies = bodies
        self._held = False

    async def __aenter__(self) -> None:
        bodies = self._bodies
        try:
            await asyncio.wait_for(bodies._slots.acquire(), bodies._max_wait)
        except TimeoutError:
            return  # the slots are held by slow bodies: go on without one
        self._held = True

    async def __aexit__(self, *exc: object) -> None:
        if self._held:
            self._held = False
            self._bodies._slots.release()
