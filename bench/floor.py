"""The floor: the least a Python gateway can do, a raw pass-through on the same HTTP stack as ccrouter.

aiohttp server + one pooled keep-alive aiohttp ClientSession (uvloop). The body bytes go to the
upstream unparsed on the same path; a JSON answer is read whole and returned, an SSE answer is relayed
chunk by chunk as it arrives (``bench/stack_choice.py``, forwarder A, measured this stack against others).
"""

from __future__ import annotations

import aiohttp
from aiohttp import web
from common import HOST

_JSON = {"Content-Type": "application/json"}
_SSE = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


def make_app(upstream: str, *, limit: int = 256) -> web.Application:
    """``limit``: the upstream pool's size (0: unbounded, as ``bench/concurrency.py`` runs it)."""
    session_key = web.AppKey("session", aiohttp.ClientSession)

    async def lifespan(app: web.Application):  # type: ignore[no-untyped-def]
        connector = aiohttp.TCPConnector(limit=limit, keepalive_timeout=60)
        app[session_key] = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60))
        yield
        await app[session_key].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        session = request.app[session_key]
        async with session.post(upstream + request.path, data=body, headers=_JSON) as reply:
            if not reply.content_type.startswith("text/event-stream"):
                data = await reply.read()
                return web.Response(body=data, status=reply.status, headers=_JSON)
            out = web.StreamResponse(status=reply.status, headers=_SSE)
            await out.prepare(request)
            async for chunk in reply.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.cleanup_ctx.append(lifespan)
    app.router.add_get("/health", health)
    app.router.add_post("/{tail:.*}", forward)
    return app


def run(port: int, upstream: str, *, limit: int = 256, backlog: int = 128) -> None:
    import uvloop

    web.run_app(
        make_app(upstream, limit=limit),
        host=HOST,
        port=port,
        access_log=None,
        print=None,
        backlog=backlog,
        loop=uvloop.new_event_loop(),
    )
