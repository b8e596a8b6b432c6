"""The fast fake upstream: reads the whole body, answers a pre-built response (aiohttp + uvloop).

OpenAI chat completions on ``/v1/chat/completions`` and ``/chat/completions``, Anthropic Messages on
``/v1/messages``. Whether a request streams is read with one regex over the raw bytes, not a JSON
parse, so the upstream costs every target the same few microseconds. A stream sends its first
``HEAD_FRAMES`` events, pauses ``STREAM_PAUSE_S``, then sends the rest: a gateway that holds events
back shows the pause in its time to first byte.
"""

from __future__ import annotations

import asyncio
import re
import socket

from aiohttp import web
from common import HOST
from payloads import Answer, answers

STREAM_PAUSE_S = 0.003
_STREAM = re.compile(rb'"stream"\s*:\s*true')
_INCLUDE_USAGE = re.compile(rb'"include_usage"\s*:\s*true')


def _nodelay(request: web.Request) -> None:
    # aiohttp sets TCP_NODELAY on accepted sockets already; the benchmark depends on it, so say it.
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def _send(request: web.Request, answer: Answer, body: bytes) -> web.StreamResponse:
    if not _STREAM.search(body):
        return web.Response(body=answer.json, headers={"Content-Type": answer.json_type})
    response = web.StreamResponse(headers={"Content-Type": answer.stream_type, "Cache-Control": "no-cache"})
    await response.prepare(request)
    await response.write(answer.stream_head)
    await asyncio.sleep(STREAM_PAUSE_S)
    await response.write(answer.stream_tail)
    await response.write_eof()
    return response


def make_app() -> web.Application:
    prebuilt = answers()

    async def openai(request: web.Request) -> web.StreamResponse:
        _nodelay(request)
        body = await request.read()
        key = "openai" if _INCLUDE_USAGE.search(body) else "openai-nousage"
        return await _send(request, prebuilt[key], body)

    async def anthropic(request: web.Request) -> web.StreamResponse:
        _nodelay(request)
        return await _send(request, prebuilt["anthropic"], await request.read())

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "gpt-fake", "object": "model"}]})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", openai)
    app.router.add_post("/chat/completions", openai)
    app.router.add_post("/v1/messages", anthropic)
    app.router.add_get("/health", health)
    app.router.add_get("/v1/models", models)
    return app


def run(port: int) -> None:
    import uvloop

    web.run_app(make_app(), host=HOST, port=port, access_log=None, print=None, loop=uvloop.new_event_loop())
