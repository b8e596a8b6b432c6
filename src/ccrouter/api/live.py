"""GET /api/live: the Overview pushed as Server-Sent Events (role viewer), for the dashboard.

One ``LiveHub`` per app computes the Overview (``ccrouter.api.overview``) once per tick, only while
someone listens, and every open stream sends that same snapshot (``event: overview``): the cost
does not grow with the number of dashboards. At most ``MAX_STREAMS`` streams are open at once;
one more is refused with a 429 (``TooManyStreamsError``) before anything is streamed.

A stream reads the configuration being served at each tick, so it survives reloads, and it does
not keep the configuration it started on open (a long-lived request would hold a retired one's
pools forever). It ends at shutdown (``on_shutdown``, before aiohttp waits for handlers) and
after ``MAX_STREAM_S``: the browser's EventSource reconnects by itself, which authenticates the
session again (a revoked key or an expired session then stops getting data).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable

from aiohttp import web

from ccrouter.api.overview import overview_bytes
from ccrouter.api.state import services_of
from ccrouter.errors import CCRouterError, TooManyStreamsError

__all__ = ["LIVE_HUB", "MAX_STREAMS", "MAX_STREAM_S", "LiveHub", "install", "routes"]

log = logging.getLogger("ccrouter.api")

MAX_STREAMS = 64
MAX_STREAM_S = 300.0
TICK_S = 1.0
# A comment on a stream that had no snapshot for this long (the ticks failing).
_KEEPALIVE_S = 15.0
# How long the browser waits before reconnecting a stream that ended.
_RETRY_MS = 2000


class LiveHub:
    """Snapshots made by ``build`` every ``interval_s`` while at least one stream listens."""

    def __init__(
        self,
        build: Callable[[], Awaitable[bytes]],
        *,
        interval_s: float = TICK_S,
        max_streams: int = MAX_STREAMS,
    ) -> None:
        self._build = build
        self._interval = interval_s
        self.max_streams = max_streams
        self.streams = 0
        self._latest: bytes | None = None
        self._latest_at = 0.0
        self._version = 0
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self.closed = False

    def enter(self) -> None:
        """Count a new stream in (a ``TooManyStreamsError`` when all are taken); starts the ticks."""
        if self.closed:
            raise TooManyStreamsError("the gateway is shutting down", retry_after=_RETRY_MS / 1000)
        if self.streams >= self.max_streams:
            raise TooManyStreamsError(
                f"{self.max_streams} live streams are open already: close a dashboard or retry later",
                retry_after=self._interval * 5,
            )
        self.streams += 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="ccrouter-live")

    def leave(self) -> None:
        self.streams -= 1

    async def snapshots(self) -> AsyncGenerator[bytes | None, None]:
        """Each new snapshot (a fresh one at once, if there is one), until the hub closes; None when
        none came for ``_KEEPALIVE_S`` (the stream then sends a comment, which also finds a client
        gone)."""
        seen = 0
        if self._latest is not None and time.monotonic() - self._latest_at < self._interval:
            seen = self._version
            yield self._latest
        while True:
            async with self._changed:
                try:
                    async with asyncio.timeout(_KEEPALIVE_S):
                        while not self.closed and self._version == seen:
                            await self._changed.wait()
                except TimeoutError:
                    pass
            if self.closed:
                return
            if self._version == seen or self._latest is None:
                yield None
                continue
            seen = self._version
            yield self._latest

    async def _run(self) -> None:
        while self.streams > 0 and not self.closed:
            try:
                body = await self._build()
            except CCRouterError as exc:  # the ledger unavailable a moment: the next tick tries again
                log.warning("the live overview failed: %s", exc.message)
            except Exception:  # the boundary: a bug in one snapshot must not end every stream's ticks
                log.exception("the live overview failed")
            else:
                async with self._changed:
                    self._latest, self._latest_at = body, time.monotonic()
                    self._version += 1
                    self._changed.notify_all()
            await asyncio.sleep(self._interval)

    async def aclose(self) -> None:
        """End every stream and the ticks (at shutdown)."""
        self.closed = True
        async with self._changed:
            self._changed.notify_all()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


LIVE_HUB: web.AppKey[LiveHub] = web.AppKey("ccrouter_live_hub", LiveHub)


async def live(request: web.Request) -> web.StreamResponse:
    hub = request.app[LIVE_HUB]
    hub.enter()
    # Not one of the requests its configuration waits for before it closes (``ccrouter.reload``):
    # each snapshot is made on the configuration served at the time. Counted back in at the end,
    # for the middleware's own count to balance.
    held = services_of(request).users
    held.leave()
    try:
        response = web.StreamResponse(
            headers={
                "content-type": "text/event-stream; charset=utf-8",
                "cache-control": "no-store",
                "x-accel-buffering": "no",
            }
        )
        await response.prepare(request)
        await response.write(f"retry: {_RETRY_MS}\n\n".encode())
        ends = time.monotonic() + MAX_STREAM_S
        async with contextlib.aclosing(hub.snapshots()) as snapshots:
            async for body in snapshots:
                if body is None:
                    await response.write(b": keep-alive\n\n")
                else:
                    await response.write(b"event: overview\ndata: " + body + b"\n\n")
                if time.monotonic() >= ends:
                    break
    except ConnectionError:  # the browser went away (aiohttp's reset error is one)
        pass
    finally:
        held.enter()
        hub.leave()
    return response


def install(app: web.Application) -> None:
    """The route, and the hub that ends its streams when the app shuts down."""
    hub = LiveHub(lambda: overview_bytes(app))
    app[LIVE_HUB] = hub

    async def shutdown(app: web.Application) -> None:
        await hub.aclose()

    app.on_shutdown.append(shutdown)
    app.add_routes(routes())


def routes() -> list[web.RouteDef]:
    return [web.get("/api/live", live, allow_head=False)]  # a HEAD would hold a stream open
