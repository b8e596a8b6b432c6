"""Fake Anthropic, OpenAI chat, OpenAI Responses and Gemini upstreams on one aiohttp server, with fault
injection.

Each generation request consumes the next scripted item (a ``Reply`` or a ``Fault``); with the script
empty, ``default`` (the simulated provider unless given) answers. Every request is recorded. The fake
can also be driven over HTTP from another process (``/_fake/script``, ``/_fake/requests``,
``/_fake/reset``) and run standalone::

    python -m ccrouter.testing.fake_upstream --host 127.0.0.1 --port 9000

aiohttp sets TCP_NODELAY on accepted sockets and keeps HTTP/1.1 connections alive; bodies are read whole.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator
from ssl import SSLContext
from types import TracebackType
from typing import Protocol

import orjson
from aiohttp import web
from multidict import CIMultiDict

from ccrouter.testing import wire_anthropic, wire_gemini, wire_openai, wire_responses
from ccrouter.testing.floods import flood
from ccrouter.testing.script import (
    Fault,
    RecordedRequest,
    RenderContext,
    Reply,
    Script,
    ScriptItem,
    WireName,
    estimate_tokens,
    item_from_dict,
    render_context,
)
from ccrouter.testing.simulated import simulated_reply

__all__ = ["DefaultBehaviour", "FakeUpstream", "main"]

DefaultBehaviour = Callable[[RecordedRequest], Reply]
_MAX_BODY = 64 * 1024 * 1024
_GEMINI_ACTIONS = frozenset({"generateContent", "streamGenerateContent", "countTokens"})


class _Wire(Protocol):
    """What each ``wire_*`` module provides."""

    JSON_CONTENT_TYPE: str

    def stream_content_type(self, ctx: RenderContext) -> str: ...
    def render(self, reply: Reply, ctx: RenderContext) -> bytes: ...
    def render_stream(self, reply: Reply, ctx: RenderContext) -> Iterator[bytes]: ...
    def error_body(
        self, status: int, retry_after: float | None = ..., message: str | None = ...
    ) -> bytes: ...
    def stream_error_frame(self, status: int, ctx: RenderContext) -> bytes: ...
    def response_headers(self, seq: int, rate_limits: bool, status: int = ...) -> dict[str, str]: ...
    def models_body(self) -> bytes: ...


_WIRES: dict[WireName, _Wire] = {
    "anthropic": wire_anthropic,
    "openai": wire_openai,
    "gemini": wire_gemini,
    "openai_responses": wire_responses,
}
# What a ``bad_frame`` fault sends after its frames: a server-sent event whose data is not JSON.
_BAD_FRAME = b"data: {this is not json\n\n"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _seconds(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.3f}".rstrip("0")


class FakeUpstream:
    """The fake server. Use ``async with FakeUpstream() as fake:`` or ``await start()`` / ``stop()``."""

    def __init__(
        self,
        *,
        default: DefaultBehaviour | None = None,
        rate_limit_headers: bool = True,
        keep_requests: int | None = None,
        api_key: str | None = None,
    ) -> None:
        """``keep_requests``: how many of the latest requests ``requests`` keeps (None: all, as a test
        wants; a long-running fake such as the simulated provider keeps a few, or it grows forever).
        ``api_key``: the only key accepted (``x-api-key``, ``Authorization: Bearer``, ``x-goog-api-key``
        or ``?key=``); any other request is recorded and answered 401 in its wire's error format."""
        self.default: DefaultBehaviour = default or simulated_reply
        self.rate_limit_headers = rate_limit_headers
        self.requests: list[RecordedRequest] = []
        self._keep = keep_requests
        self._api_keys = None if api_key is None else frozenset({api_key})
        self._script = Script()
        self._seq = 0
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._closing = asyncio.Event()

    def script(self, *items: ScriptItem) -> None:
        """Queue replies and faults, consumed one per generation request, in order."""
        self._script.push(items)

    @property
    def pending(self) -> int:
        """Scripted items not consumed yet."""
        return len(self._script)

    def reset(self) -> None:
        """Forget the script and the recorded requests."""
        self._script.clear()
        self.requests.clear()

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the fake upstream is not started")
        return self._url

    async def start(self, host: str = "127.0.0.1", port: int = 0, *, ssl: SSLContext | None = None) -> str:
        """Listen on ``host:port`` (loopback only; port 0 picks a free one) and return the base URL
        (``https://`` with ``ssl``, a server context: ``ccrouter.testing.tls``)."""
        if not _is_loopback(host):
            raise ValueError(f"the fake upstream only listens on loopback addresses, not {host!r}")
        if self._runner is not None:
            return self.url
        self._closing = asyncio.Event()
        # handler_cancellation: a handler holding a request stops when its client goes away.
        runner = web.AppRunner(
            self.make_app(), handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await runner.setup()
        await web.TCPSite(runner, host, port, ssl_context=ssl).start()
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        self._url = f"{'https' if ssl else 'http'}://{bound_host}:{bound_port}"
        return self._url

    async def stop(self) -> None:
        """Release held requests and close the server."""
        if self._runner is None:
            return
        self._closing.set()
        runner, self._runner, self._url = self._runner, None, None
        await runner.cleanup()

    async def __aenter__(self) -> FakeUpstream:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def accept_keys(self, *keys: str) -> None:
        """From now on accept exactly ``keys`` (a test rotating the upstream's key); none: any key."""
        self._api_keys = frozenset(keys) or None

    def _authorised(self, request: web.Request) -> bool:
        if self._api_keys is None or request.path.startswith("/_fake/"):
            return True
        headers = request.headers
        offered = {
            headers.get("x-api-key"),
            headers.get("x-goog-api-key"),
            headers.get("Authorization", "").removeprefix("Bearer ").strip() or None,
            request.query.get("key"),
        }
        return not self._api_keys.isdisjoint(offered)

    @web.middleware
    async def _auth(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if self._authorised(request):
            return await handler(request)
        wire: WireName = "openai"
        if request.path.startswith(("/v1beta", "/v1/projects")):
            wire = "gemini"
        elif request.path.startswith("/v1/messages") or "anthropic-version" in request.headers:
            wire = "anthropic"
        elif request.path.endswith("/responses"):
            wire = "openai_responses"
        record, seq = await self._record(request, wire, stream=False)
        return self._status(record, seq, Fault("status", status=401))

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=_MAX_BODY, middlewares=[self._auth])
        router = app.router
        router.add_post("/v1/messages", self._anthropic_messages)
        router.add_post("/v1/messages/count_tokens", self._anthropic_count_tokens)
        router.add_get("/v1/models", self._models)
        router.add_get("/models", self._models)
        router.add_post("/v1/chat/completions", self._openai_chat)
        router.add_post("/chat/completions", self._openai_chat)
        router.add_post("/v1/responses", self._openai_responses)
        router.add_post("/responses", self._openai_responses)
        router.add_get("/v1beta/models", self._gemini_models)
        for prefix in ("/v1beta", "/v1", "/v1/projects/{project}/locations/{location}/publishers/google"):
            router.add_post(prefix + "/models/{target}", self._gemini)
        router.add_post("/_fake/script", self._control_script)
        router.add_get("/_fake/requests", self._control_requests)
        router.add_post("/_fake/reset", self._control_reset)
        return app

    # -- endpoints ------------------------------------------------------------------------------

    async def _anthropic_messages(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, "anthropic")

    async def _openai_chat(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, "openai")

    async def _openai_responses(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, "openai_responses")

    async def _gemini(self, request: web.Request) -> web.StreamResponse:
        model, _, action = request.match_info["target"].partition(":")
        if action not in _GEMINI_ACTIONS:
            return web.Response(status=404, body=wire_gemini.error_body(404), content_type="application/json")
        if action == "countTokens":
            record, seq = await self._record(request, "gemini", model=model, stream=False)
            return self._json(record, seq, {"totalTokens": estimate_tokens(len(record.raw))})
        return await self._generate(request, "gemini", model=model, stream=action == "streamGenerateContent")

    async def _anthropic_count_tokens(self, request: web.Request) -> web.StreamResponse:
        record, seq = await self._record(request, "anthropic", stream=False)
        if not isinstance(record.body, dict):
            return self._status(record, seq, Fault("status", status=400))
        return self._json(record, seq, {"input_tokens": estimate_tokens(len(record.raw))})

    async def _models(self, request: web.Request) -> web.StreamResponse:
        # GET /v1/models exists in both APIs; Anthropic clients always send anthropic-version.
        anthropic = "anthropic-version" in request.headers or "x-api-key" in request.headers
        record, seq = await self._record(request, "anthropic" if anthropic else "openai", stream=False)
        return self._json(record, seq, _WIRES[record.wire].models_body())

    async def _gemini_models(self, request: web.Request) -> web.StreamResponse:
        record, seq = await self._record(request, "gemini", stream=False)
        return self._json(record, seq, wire_gemini.models_body())

    # -- recording and answering ----------------------------------------------------------------

    async def _record(
        self, request: web.Request, wire: WireName, *, model: str | None = None, stream: bool | None = None
    ) -> tuple[RecordedRequest, int]:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        fields = body if isinstance(body, dict) else {}
        record = RecordedRequest(
            wire=wire,
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={name.lower(): value for name, value in request.headers.items()},
            body=body,
            raw=raw,
            model=model if model is not None else str(fields.get("model", "")),
            stream=stream if stream is not None else fields.get("stream") is True,
        )
        self.requests.append(record)
        if self._keep is not None and len(self.requests) > self._keep:
            del self.requests[: len(self.requests) - self._keep]
        self._seq += 1
        return record, self._seq

    def _json(self, record: RecordedRequest, seq: int, payload: object) -> web.Response:
        wire = _WIRES[record.wire]
        headers = CIMultiDict(wire.response_headers(seq, self.rate_limit_headers))
        headers["Content-Type"] = wire.JSON_CONTENT_TYPE
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        return web.Response(body=body, headers=headers)

    async def _generate(
        self, request: web.Request, wire: WireName, *, model: str | None = None, stream: bool | None = None
    ) -> web.StreamResponse:
        record, seq = await self._record(request, wire, model=model, stream=stream)
        if not isinstance(record.body, dict):
            return self._status(record, seq, Fault("status", status=400))
        item = self._script.pop()
        if item is None:
            item = self.default(record)
        if isinstance(item, Fault):
            return await self._fault(request, record, seq, item)
        return await self._answer(request, record, seq, item)

    async def _fault(
        self, request: web.Request, record: RecordedRequest, seq: int, fault: Fault
    ) -> web.StreamResponse:
        kind = fault.kind
        if kind == "status" or (kind in ("stream_error", "bad_frame") and not record.stream):
            return self._status(record, seq, fault)
        if kind == "redirect":
            status = fault.status if 300 <= fault.status < 400 else 302
            return web.Response(status=status, headers={"Location": fault.location, **fault.headers})
        if kind in ("huge_body", "gzip_bomb", "endless_line"):
            prelude = b""
            if kind == "endless_line" and record.stream and fault.reply is not None:
                ctx = render_context(fault.reply, record, seq, int(time.time()))
                frames = _WIRES[record.wire].render_stream(fault.reply, ctx)
                prelude = b"".join(itertools.islice(frames, fault.after_chunks))
            return await flood(request, record, fault, prelude)
        if kind in ("timeout", "drop_before_first_byte"):
            await self._hold(fault.wait_bound() if kind == "timeout" else fault.delay)
            return self._drop(request, web.Response(), graceful=False)
        reply = fault.reply if fault.reply is not None else self.default(record)
        if kind == "slow_first_byte":
            await self._hold(fault.delay)
            return await self._answer(request, record, seq, reply, headers=fault.headers)
        error = fault.status if kind == "stream_error" else None
        return await self._answer(
            request,
            record,
            seq,
            reply,
            headers=fault.headers,
            cut=fault.after_chunks,
            error=error,
            bad_frame=kind == "bad_frame",
        )

    def _status(self, record: RecordedRequest, seq: int, fault: Fault) -> web.Response:
        wire = _WIRES[record.wire]
        body = fault.body if fault.body is not None else wire.error_body(fault.status, fault.retry_after)
        headers = CIMultiDict(wire.response_headers(seq, self.rate_limit_headers, fault.status))
        headers["Content-Type"] = wire.JSON_CONTENT_TYPE
        if fault.retry_after is not None:
            headers["Retry-After"] = _seconds(fault.retry_after)
        headers.update(fault.headers)
        return web.Response(status=fault.status, body=body, headers=headers)

    async def _answer(
        self,
        request: web.Request,
        record: RecordedRequest,
        seq: int,
        reply: Reply,
        *,
        headers: dict[str, str] | None = None,
        cut: int | None = None,
        error: int | None = None,
        bad_frame: bool = False,
    ) -> web.StreamResponse:
        """Send ``reply``; with ``cut``, only that many frames, then the ``error`` event, a frame
        that is not JSON (``bad_frame``) or a drop."""
        wire = _WIRES[record.wire]
        ctx = render_context(reply, record, seq, int(time.time()))
        out = CIMultiDict(wire.response_headers(seq, self.rate_limit_headers))
        if not record.stream:
            body = wire.render(reply, ctx)
            out["Content-Type"] = wire.JSON_CONTENT_TYPE
            out.update(headers or {})
            if cut is None:
                return web.Response(body=body, headers=out)
            response = web.StreamResponse(headers=out)
            response.content_length = len(body)
            await response.prepare(request)
            await response.write(body[: len(body) // 2])
            return self._drop(request, response, graceful=True)
        out["Content-Type"] = wire.stream_content_type(ctx)
        out["Cache-Control"] = "no-cache"
        out.update(headers or {})
        response = web.StreamResponse(headers=out)
        await response.prepare(request)
        frames = itertools.chain(self._stream_prelude(record), wire.render_stream(reply, ctx))
        if cut is None and reply.chunk_delay <= 0:
            await response.write(b"".join(frames))  # one write: the fast path for benchmarks
            return response
        for index, frame in enumerate(frames):
            if cut is not None and index >= cut:
                break
            if index:
                await self._hold(reply.chunk_delay)
            await response.write(frame)
        if cut is None:
            return response
        if error is not None:
            await response.write(wire.stream_error_frame(error, ctx))
            return response
        if bad_frame:
            await response.write(_BAD_FRAME)
            return response
        return self._drop(request, response, graceful=True)

    def _stream_prelude(self, record: RecordedRequest) -> list[bytes]:
        """Frames a vendor sends before the wire's own (a subclass's quirk); none here."""
        return []

    async def _hold(self, seconds: float) -> None:
        """Sleep, but wake up early when the server stops."""
        if seconds > 0 and not self._closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), seconds)

    @staticmethod
    def _drop(request: web.Request, response: web.StreamResponse, *, graceful: bool) -> web.StreamResponse:
        """Close the connection under the response.

        ``graceful`` flushes what was written first (a mid-stream cut must deliver its frames exactly);
        otherwise pending bytes are discarded. aiohttp then fails to finish ``response`` and treats the
        connection as reset by the peer, without logging an error.
        """
        transport = request.transport
        if transport is not None:
            if graceful:
                transport.close()
            else:
                transport.abort()
        return response

    # -- control over HTTP ----------------------------------------------------------------------

    async def _control_script(self, request: web.Request) -> web.Response:
        try:
            data = orjson.loads(await request.read())
            if not isinstance(data, list):
                raise TypeError("POST /_fake/script takes a JSON list of replies and faults")
            items = [item_from_dict(entry) for entry in data]
        except (TypeError, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
            return web.json_response({"error": str(exc)}, status=400)
        self._script.push(items)
        return web.json_response({"queued": len(items), "pending": len(self._script)})

    async def _control_requests(self, request: web.Request) -> web.Response:
        payload = orjson.dumps([recorded.as_dict() for recorded in self.requests])
        return web.Response(body=payload, content_type="application/json")

    async def _control_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True})


async def _serve(host: str, port: int, api_key: str | None = None) -> None:
    fake = FakeUpstream(api_key=api_key)
    url = await fake.start(host, port)
    print(f"ccrouter fake upstream listening on {url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> None:
    """Run a fake upstream until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m ccrouter.testing.fake_upstream",
        description="Fake Anthropic / OpenAI (chat, Responses) / Gemini upstream for tests and offline runs.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--api-key", help="accept only this key (others get 401); default: any")
    args = parser.parse_args(argv)
    if not _is_loopback(args.host):
        parser.error(f"--host must be a loopback address, not {args.host!r}")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port, args.api_key))


if __name__ == "__main__":
    main()
