#!/usr/bin/env python3
"""Minimal HTTP pass-through benchmark: which Python server/client stack should ccrouter use?

Self-contained; run with a venv that has aiohttp, uvloop, orjson, uvicorn[standard], starlette,
httpx and granian (the project's own venv does not need them):

    python3 -m venv /tmp/stackvenv
    /tmp/stackvenv/bin/pip install aiohttp uvloop orjson 'uvicorn[standard]' starlette httpx granian
    /tmp/stackvenv/bin/python bench/stack_choice.py   # ~45 s; writes bench/results/stack_choice.json

One run starts, each in its own process on 127.0.0.1:
  * a fake upstream (aiohttp + uvloop): POST /v1/chat/completions reads the whole body and returns a
    pre-built ~1 KB JSON; POST /v1/stream returns a pre-built SSE stream (N events, no delays);
  * the candidate forwarders (pooled keep-alive upstream client, body bytes passed through unparsed):
      A  aiohttp server + aiohttp ClientSession
      B  starlette on uvicorn (httptools, uvloop) + httpx.AsyncClient
      C  starlette on uvicorn (httptools, uvloop) + aiohttp ClientSession
      D  granian (ASGI, starlette app, uvloop) + aiohttp ClientSession
      E  A + orjson.loads/orjson.dumps of the request body (parse + re-serialise cost)
  * one client process (aiohttp + uvloop, keep-alive) that measures, interleaved round-robin over
    the targets (direct-to-upstream baseline + every forwarder) so that machine drift cancels out:
      - sequential POST latency with the ~86 KB body (p50/p99, added vs direct),
      - forwarder CPU time per request (utime+stime from /proc/<pid>/stat, summed over the
        forwarder's process tree, read before/after that target's requests only),
      - sequential SSE stream time (whole stream, p50/p99),
      - throughput with 16 concurrent requests (2 s per target, split in interleaved slices).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

HOST = "127.0.0.1"
HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "stack_choice.json"

# ---- knobs (all loops are bounded by these) ---------------------------------------------------
ROUNDS = 40  # interleaved rounds for sequential latency
PER_ROUND = 50  # sequential requests per target per round
WARMUP = 100  # warm-up requests per target
SSE_ROUNDS = 20
SSE_PER_ROUND = 20
SSE_EVENTS = 60  # events per upstream SSE stream
CONCURRENCY = 16
TPUT_SECONDS = 2.0  # per target, split into TPUT_SLICES interleaved slices
TPUT_SLICES = 4
REQ_TIMEOUT = 10.0
START_TIMEOUT = 20.0

FORWARDERS = {
    "A": "aiohttp srv + aiohttp cli",
    "B": "starlette/uvicorn + httpx",
    "C": "starlette/uvicorn + aiohttp cli",
    "D": "granian/starlette + aiohttp cli",
    "E": "A + orjson loads/dumps",
}


# ---- payloads ----------------------------------------------------------------------------------
def build_request_body(target_kb: int = 86) -> bytes:
    """Deterministic Claude-Code-like request (system, tools, long history), ~target_kb KB."""
    tools = [
        {
            "name": f"tool_{i}",
            "description": "Performs an operation on the workspace. " * 8,
            "input_schema": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Absolute path of the file."},
                    "content": {"type": "string", "description": "New content."},
                    "line": {"type": "integer", "minimum": 0},
                },
                "required": ["path"],
            },
        }
        for i in range(16)
    ]
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "stream": False,
        "system": [{"type": "text", "text": "You are Claude Code, a coding agent. " * 60}],
        "tools": tools,
        "messages": [],
    }
    text = (
        "def handler(request):\n    data = await request.json()\n    return web.json_response(data)\n"
        " \u00e9\u00e8 \"quoted\" \\ tab\t"
    )
    i = 0
    while len(json.dumps(body, ensure_ascii=False).encode()) < target_kb * 1024 and i < 10_000:
        role = "user" if i % 2 == 0 else "assistant"
        body["messages"].append(
            {"role": role, "content": [{"type": "text", "text": f"[{i}] " + text * 6}]}
        )
        i += 1
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def build_response_body() -> bytes:
    resp = {
        "id": "chatcmpl-0123456789abcdef",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "fake-upstream",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "All good. " * 80},
            }
        ],
        "usage": {"prompt_tokens": 21000, "completion_tokens": 200, "total_tokens": 21200},
    }
    return json.dumps(resp, separators=(",", ":")).encode()


def build_sse_events(n: int = SSE_EVENTS) -> list[bytes]:
    evs = []
    for i in range(n):
        delta = {"type": "text_delta", "text": f"tok{i} " * 4}
        d = {"type": "content_block_delta", "index": 0, "delta": delta}
        evs.append(b"event: content_block_delta\ndata: " + json.dumps(d).encode() + b"\n\n")
    evs.append(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
    return evs


# ---- fake upstream -----------------------------------------------------------------------------
def run_upstream(port: int) -> None:
    import uvloop
    from aiohttp import web

    resp_body = build_response_body()
    events = build_sse_events()

    def nodelay(request: web.Request) -> None:
        # aiohttp already sets TCP_NODELAY in BaseProtocol.connection_made; make it explicit.
        sock = request.transport.get_extra_info("socket") if request.transport else None
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def completions(request: web.Request) -> web.Response:
        nodelay(request)
        await request.read()
        return web.Response(body=resp_body, content_type="application/json")

    async def stream(request: web.Request) -> web.StreamResponse:
        nodelay(request)
        await request.read()
        r = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await r.prepare(request)
        for ev in events:
            await r.write(ev)
        await r.write_eof()
        return r

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_post("/v1/stream", stream)
    uvloop.install()
    web.run_app(app, host=HOST, port=port, access_log=None, print=None, handle_signals=True)


# ---- forwarders --------------------------------------------------------------------------------
def upstream_base() -> str:
    return f"http://{HOST}:{os.environ['STACK_UPSTREAM_PORT']}"


JSON_HDR = {"Content-Type": "application/json"}


def run_aiohttp_forwarder(port: int, reserialise: bool) -> None:
    import aiohttp
    import orjson
    import uvloop
    from aiohttp import web

    base = upstream_base()

    async def on_startup(app: web.Application) -> None:
        app["session"] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=60),
            timeout=aiohttp.ClientTimeout(total=REQ_TIMEOUT),
        )

    async def on_cleanup(app: web.Application) -> None:
        await app["session"].close()

    async def completions(request: web.Request) -> web.Response:
        body = await request.read()
        if reserialise:
            body = orjson.dumps(orjson.loads(body))
        sess = request.app["session"]
        async with sess.post(base + "/v1/chat/completions", data=body, headers=JSON_HDR) as r:
            data = await r.read()
            return web.Response(body=data, status=r.status, content_type="application/json")

    async def stream(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if reserialise:
            body = orjson.dumps(orjson.loads(body))
        async with request.app["session"].post(base + "/v1/stream", data=body, headers=JSON_HDR) as r:
            out = web.StreamResponse(
                status=r.status, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
            )
            await out.prepare(request)
            async for chunk in r.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_post("/v1/stream", stream)
    uvloop.install()
    web.run_app(app, host=HOST, port=port, access_log=None, print=None, handle_signals=True)


def make_starlette_app(client_kind: str):  # type: ignore[no-untyped-def]
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    base = upstream_base()
    state: dict = {}
    sse_headers = {"Cache-Control": "no-cache"}

    @contextlib.asynccontextmanager
    async def lifespan(app):  # type: ignore[no-untyped-def]
        if client_kind == "httpx":
            import httpx

            state["c"] = httpx.AsyncClient(
                limits=httpx.Limits(max_connections=256, max_keepalive_connections=256, keepalive_expiry=60),
                timeout=REQ_TIMEOUT,
            )
            yield
            await state["c"].aclose()
        else:
            import aiohttp

            state["c"] = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=60),
                timeout=aiohttp.ClientTimeout(total=REQ_TIMEOUT),
            )
            yield
            await state["c"].close()

    if client_kind == "httpx":

        async def completions(request: Request) -> Response:
            body = await request.body()
            r = await state["c"].post(base + "/v1/chat/completions", content=body, headers=JSON_HDR)
            return Response(r.content, status_code=r.status_code, media_type="application/json")

        async def stream(request: Request) -> Response:
            body = await request.body()
            c = state["c"]
            req = c.build_request("POST", base + "/v1/stream", content=body, headers=JSON_HDR)
            r = await c.send(req, stream=True)

            async def gen():  # type: ignore[no-untyped-def]
                try:
                    async for chunk in r.aiter_raw():
                        yield chunk
                finally:
                    await r.aclose()

            return StreamingResponse(gen(), status_code=r.status_code, media_type="text/event-stream",
                                     headers=sse_headers)

    else:

        async def completions(request: Request) -> Response:
            body = await request.body()
            async with state["c"].post(base + "/v1/chat/completions", data=body, headers=JSON_HDR) as r:
                data = await r.read()
                return Response(data, status_code=r.status, media_type="application/json")

        async def stream(request: Request) -> Response:
            body = await request.body()
            r = await state["c"].post(base + "/v1/stream", data=body, headers=JSON_HDR)

            async def gen():  # type: ignore[no-untyped-def]
                try:
                    async for chunk in r.content.iter_any():
                        yield chunk
                finally:
                    r.release()

            return StreamingResponse(gen(), status_code=r.status, media_type="text/event-stream",
                                     headers=sse_headers)

    return Starlette(
        routes=[
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/v1/stream", stream, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


def run_uvicorn_forwarder(port: int, client_kind: str) -> None:
    import uvicorn

    app = make_starlette_app(client_kind)
    uvicorn.run(app, host=HOST, port=port, loop="uvloop", http="httptools", lifespan="on",
                log_level="warning", access_log=False, timeout_keep_alive=60)


def granian_app_factory():  # type: ignore[no-untyped-def]
    """Import target for granian workers (factory=True)."""
    return make_starlette_app("aiohttp")


def run_granian_forwarder(port: int) -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops

    Granian(
        target="stack_choice:granian_app_factory",
        address=HOST,
        port=port,
        interface=Interfaces.ASGI,
        workers=1,
        runtime_threads=1,
        loop=Loops.uvloop,
        factory=True,
        working_dir=HERE,
        log_enabled=False,
    ).serve()


# ---- process helpers ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = START_TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex((HOST, port)) == 0:
                return True
        time.sleep(0.05)
    return False


def proc_tree(root: int) -> list[int]:
    """root and all its descendants (granian runs its worker in a child process)."""
    parent: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
                parent[int(d)] = int(st[st.rindex(")") + 2 :].split()[1])
            except (OSError, ValueError):
                pass
    out, todo = [root], [root]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                st = f.read()
            fields = st[st.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        except (OSError, ValueError, IndexError):
            pass
    return total


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


# ---- client ------------------------------------------------------------------------------------
async def client_main(targets: list[dict], body: bytes) -> dict:
    import aiohttp

    tick_ms = 1000.0 / os.sysconf("SC_CLK_TCK")
    res: dict = {
        t["name"]: {"lat_ms": [], "sse_ms": [], "cpu_ticks": 0, "n": 0, "errors": 0,
                    "sse_cpu_ticks": 0, "sse_n": 0, "tput_n": 0, "tput_s": 0.0, "tput_cpu_ticks": 0,
                    "tput_lat_ms": []}
        for t in targets
    }
    conn = aiohttp.TCPConnector(limit=256, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=REQ_TIMEOUT)
    expect_sse = b"".join(build_sse_events())
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as s:

        async def one(url: str) -> float:
            t0 = time.perf_counter()
            async with s.post(url, data=body, headers=JSON_HDR) as r:
                data = await r.read()
            dt = (time.perf_counter() - t0) * 1000
            if r.status != 200 or len(data) < 500:
                raise RuntimeError(f"bad response {r.status} {data[:200]!r}")
            return dt

        async def one_sse(url: str) -> float:
            t0 = time.perf_counter()
            n = 0
            async with s.post(url, data=body, headers=JSON_HDR) as r:
                async for chunk in r.content.iter_any():
                    n += len(chunk)
            dt = (time.perf_counter() - t0) * 1000
            if r.status != 200 or n != len(expect_sse):
                raise RuntimeError(f"bad SSE {r.status} got {n} bytes, want {len(expect_sse)}")
            return dt

        # warm-up (also fills every forwarder's upstream pool)
        for t in targets:
            for _ in range(WARMUP):
                await one(t["url"])
            await asyncio.gather(*(one(t["url"]) for _ in range(CONCURRENCY)))
            for _ in range(5):
                await one_sse(t["sse_url"])
        log("client: warm-up done")
        for t in targets:  # after warm-up, so granian's worker process certainly exists
            t["pids"] = proc_tree(t["pid"]) if t["pid"] else []
            log(f"client: {t['name']} pids {t['pids']}")

        def order(r: int) -> list[dict]:  # rotate start so no target always goes first
            k = r % len(targets)
            return targets[k:] + targets[:k]

        # 1) sequential latency, interleaved
        for r in range(ROUNDS):
            for t in order(r):
                rt = res[t["name"]]
                c0 = cpu_ticks(t["pids"])
                for _ in range(PER_ROUND):
                    try:
                        rt["lat_ms"].append(await one(t["url"]))
                    except Exception as e:
                        rt["errors"] += 1
                        log(f"client: {t['name']} error {e!r}")
                rt["cpu_ticks"] += cpu_ticks(t["pids"]) - c0
                rt["n"] += PER_ROUND
        log("client: sequential latency done")

        # 2) SSE, sequential, interleaved
        for r in range(SSE_ROUNDS):
            for t in order(r):
                rt = res[t["name"]]
                c0 = cpu_ticks(t["pids"])
                for _ in range(SSE_PER_ROUND):
                    try:
                        rt["sse_ms"].append(await one_sse(t["sse_url"]))
                    except Exception as e:
                        rt["errors"] += 1
                        log(f"client: {t['name']} SSE error {e!r}")
                rt["sse_cpu_ticks"] += cpu_ticks(t["pids"]) - c0
                rt["sse_n"] += SSE_PER_ROUND
        log("client: SSE done")

        # 3) throughput with CONCURRENCY in-flight requests, interleaved slices
        slice_s = TPUT_SECONDS / TPUT_SLICES
        for r in range(TPUT_SLICES):
            for t in order(r):
                rt = res[t["name"]]
                deadline = time.perf_counter() + slice_s
                done = 0

                async def worker(url: str = t["url"], rt: dict = rt, deadline: float = deadline) -> None:
                    nonlocal done
                    while time.perf_counter() < deadline:
                        try:
                            rt["tput_lat_ms"].append(await one(url))
                            done += 1
                        except Exception as e:
                            rt["errors"] += 1
                            log(f"client: tput error {e!r}")
                            return

                c0 = cpu_ticks(t["pids"])
                t0 = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
                rt["tput_s"] += time.perf_counter() - t0
                rt["tput_cpu_ticks"] += cpu_ticks(t["pids"]) - c0
                rt["tput_n"] += done
        log("client: throughput done")

    out = {}
    base = res["direct"]
    for t in targets:
        rt = res[t["name"]]
        lat, sse = rt["lat_ms"], rt["sse_ms"]
        out[t["name"]] = {
            "label": t["label"],
            "n": len(lat),
            "errors": rt["errors"],
            "p50_ms": pct(lat, 50),
            "p99_ms": pct(lat, 99),
            "mean_ms": sum(lat) / len(lat) if lat else float("nan"),
            "added_p50_ms": pct(lat, 50) - pct(base["lat_ms"], 50),
            "added_p99_ms": pct(lat, 99) - pct(base["lat_ms"], 99),
            "cpu_ms_per_req": (rt["cpu_ticks"] * tick_ms / rt["n"]) if t["pid"] else None,
            "sse_p50_ms": pct(sse, 50),
            "sse_p99_ms": pct(sse, 99),
            "sse_added_p50_ms": pct(sse, 50) - pct(base["sse_ms"], 50),
            "sse_cpu_ms_per_stream": (rt["sse_cpu_ticks"] * tick_ms / rt["sse_n"]) if t["pid"] else None,
            "tput_rps": rt["tput_n"] / rt["tput_s"] if rt["tput_s"] else 0.0,
            "tput_p50_ms": pct(rt["tput_lat_ms"], 50),
            "tput_p99_ms": pct(rt["tput_lat_ms"], 99),
            "tput_cpu_ms_per_req": (rt["tput_cpu_ticks"] * tick_ms / rt["tput_n"])
            if (t["pid"] and rt["tput_n"]) else None,
        }
    return out


def run_client(spec_path: str) -> None:
    import uvloop

    spec = json.loads(Path(spec_path).read_text())
    body = build_request_body()
    uvloop.install()
    out = asyncio.run(client_main(spec["targets"], body))
    Path(spec["out"]).write_text(json.dumps(out))


# ---- orchestrator ------------------------------------------------------------------------------
def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def fmt(v: float | None, nd: int = 3) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def table(out: dict) -> str:
    hdr = (f"{'target':<34} {'p50':>6} {'p99':>6} {'+p50':>6} {'+p99':>6} {'cpu/req':>7} "
           f"{'sse p50':>7} {'+sse':>6} {'rps@16':>7} {'cpu/req':>7}")
    sub = (f"{'':<34} {'ms':>6} {'ms':>6} {'ms':>6} {'ms':>6} {'ms':>7} "
           f"{'ms':>7} {'ms':>6} {'':>7} {'@16 ms':>7}")
    lines = [hdr, sub, "-" * len(hdr)]
    for name, r in out.items():
        lbl = "direct (client->upstream)" if name == "direct" else f"{name} {r['label']}"
        if r["errors"]:
            lbl += f" !{r['errors']}err"
        lines.append(
            f"{lbl:<34} {fmt(r['p50_ms']):>6} {fmt(r['p99_ms']):>6} {fmt(r['added_p50_ms']):>6} "
            f"{fmt(r['added_p99_ms']):>6} {fmt(r['cpu_ms_per_req']):>7} {fmt(r['sse_p50_ms']):>7} "
            f"{fmt(r['sse_added_p50_ms']):>6} {r['tput_rps']:>7.0f} {fmt(r['tput_cpu_ms_per_req']):>7}"
        )
    return "\n".join(lines)


def versions() -> dict:
    v = {}
    for p in ("aiohttp", "uvloop", "orjson", "uvicorn", "httptools", "starlette", "httpx", "granian"):
        try:
            v[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            v[p] = None
    return v


def orchestrate(only: str) -> int:
    t_start = time.monotonic()
    procs: list[subprocess.Popen] = []

    def spawn(role: str, port: int, env: dict | None = None) -> subprocess.Popen:
        p = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--role", role, "--port", str(port)],
            env={**os.environ, **(env or {}), "PYTHONPATH": str(HERE), "PYTHONDONTWRITEBYTECODE": "1"},
            start_new_session=True,  # own process group -> we can kill the whole tree we started
            stdout=subprocess.DEVNULL,
        )
        procs.append(p)
        return p

    def kill_all() -> None:
        for p in procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
        # granian's worker is in the same process group; make sure nothing of ours lingers
        for p in procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        up_port = free_port()
        up = spawn("upstream", up_port)
        if not wait_port(up_port, up):
            log("upstream failed to start")
            return 1
        env = {"STACK_UPSTREAM_PORT": str(up_port)}
        targets = [{"name": "direct", "label": "direct", "pid": 0,
                    "url": f"http://{HOST}:{up_port}/v1/chat/completions",
                    "sse_url": f"http://{HOST}:{up_port}/v1/stream"}]
        skipped = {}
        for name, label in FORWARDERS.items():
            if only and name not in only:
                continue
            port = free_port()
            p = spawn(f"fwd{name}", port, env)
            if not wait_port(port, p):
                skipped[name] = "did not start"
                log(f"forwarder {name} ({label}) did not start; skipping")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                continue
            targets.append({"name": name, "label": label, "pid": p.pid,
                            "url": f"http://{HOST}:{port}/v1/chat/completions",
                            "sse_url": f"http://{HOST}:{port}/v1/stream"})
        log(f"started upstream + {len(targets) - 1} forwarders in {time.monotonic() - t_start:.1f}s")

        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        spec_path = RESULTS.parent / "_stack_choice_spec.json"
        out_path = RESULTS.parent / "_stack_choice_client.json"
        spec_path.write_text(json.dumps({"targets": targets, "out": str(out_path)}))
        cl = spawn("client", 0)
        try:
            rc = cl.wait(timeout=170)
        except subprocess.TimeoutExpired:
            log("client timed out")
            return 1
        if rc != 0 or not out_path.exists():
            log(f"client failed rc={rc}")
            return 1
        out = json.loads(out_path.read_text())
        spec_path.unlink(missing_ok=True)
        out_path.unlink(missing_ok=True)

        body_len = len(build_request_body())
        info = (f"body {body_len} B, response {len(build_response_body())} B, SSE {SSE_EVENTS + 1} events "
                f"({len(b''.join(build_sse_events()))} B); seq {ROUNDS}x{PER_ROUND}/target interleaved; "
                f"SSE {SSE_ROUNDS}x{SSE_PER_ROUND}; tput c={CONCURRENCY} {TPUT_SECONDS:g}s/target; "
                f"{os.cpu_count()} CPUs; py {platform.python_version()}")
        print(info)
        print(table(out))
        if skipped:
            print(f"skipped: {skipped}")
        elapsed = time.monotonic() - t_start
        print(f"total {elapsed:.1f}s")
        RESULTS.write_text(json.dumps({
            "info": info, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "elapsed_s": elapsed,
            "cpus": os.cpu_count(), "python": platform.python_version(), "versions": versions(),
            "body_bytes": body_len, "skipped": skipped, "results": out,
        }, indent=2))
        log(f"wrote {RESULTS}")
        return 0
    finally:
        kill_all()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--role", default="orchestrator", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--only", default="", help="subset of forwarders to run, e.g. ACE")
    a = ap.parse_args()
    role = a.role
    if role == "orchestrator":
        return orchestrate(a.only.upper())
    if role == "upstream":
        run_upstream(a.port)
    elif role == "fwdA":
        run_aiohttp_forwarder(a.port, reserialise=False)
    elif role == "fwdE":
        run_aiohttp_forwarder(a.port, reserialise=True)
    elif role == "fwdB":
        run_uvicorn_forwarder(a.port, "httpx")
    elif role == "fwdC":
        run_uvicorn_forwarder(a.port, "aiohttp")
    elif role == "fwdD":
        run_granian_forwarder(a.port)
    elif role == "client":
        run_client(str(RESULTS.parent / "_stack_choice_spec.json"))
    else:
        raise SystemExit(f"unknown role {role}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
