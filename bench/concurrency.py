#!/usr/bin/env python3
"""Many long-lived streams at once: ccrouter beside the floor in one run (``make bench-concurrency``).

    .venv/bin/python bench/concurrency.py                    # 100, 500 and 1,000 streams (~3 min)
    .venv/bin/python bench/concurrency.py --levels 50 --quick   # a smoke run
    .venv/bin/python bench/concurrency.py --variant /tmp/patched   # also ccrouter from /tmp/patched

At each level N, each target (the floor, then ccrouter, the order alternating per level) is started
fresh, warmed up with a few streams, and then gets N concurrent streams opened within one second
(request ``i`` sent at ``i/N`` s). Each request is a Claude-Code-shaped body
(``ccrouter.testing.claude_code.claude_code_request``, a new nonce in each); the fake upstream (its
own process) answers each with an Anthropic stream whose head comes at once and then one text delta
every ``FRAME_GAP_S`` for ``STREAM_S``, each delta carrying the monotonic time it was sent. The
client (its own process, uvloop, one connection per stream) records per stream: whether it
completed (200, every delta, ``message_stop``), its time to first body byte, and per delta the
transit time (received minus sent); "added gap" is how much the path lengthened the gap between two
consecutive deltas (the difference of their transit times). The gateway's RSS is sampled every
0.2 s: memory per open stream is (peak - before) / N. Each figure gets its ratio to the floor's at
the same level, and the issue's targets are checked: success 100%, ttfb p50 and p99, added gap p99
and memory per stream at most 2x the floor's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
from common import HOST, RESULTS, cpu_ticks, free_port, log, pct, rss_mb
from targets import Launcher, server_pids

FRAME_GAP_S = 0.05
STREAM_S = 10.0
FRAMES = round(STREAM_S / FRAME_GAP_S)
OPEN_WITHIN_S = 1.0
MODEL = "claude-sonnet-4-6"
CLIENT_TIMEOUT_S = 90.0
WARMUP_STREAMS = 8
LEVELS = (100, 500, 1000)
FLOOR_BACKLOG = 1024
_STAMP = re.compile(rb"t(\d{6,20})z")
# Warm-up requests carry a nonce starting with 9 ("turn 9..."): the upstream answers them with a
# short stream, so a warm-up costs a fraction of a second, not a whole stream's 10 s.
WARMUP_FIRST = 9_000_000_000
WARMUP_FRAMES = 4
_WARMUP = re.compile(rb"turn 9\d{9}")
NONCE = b"@NONCE@@@@"


# Kernel counters (/proc/net/netstat, /proc/net/snmp) read before and after each trial: an accept
# queue that overflowed, SYNs retransmitted (a dropped SYN costs the client 1 s, then 3 s, 7 s...).
_KERNEL_COUNTERS = ("ListenOverflows", "ListenDrops", "TCPSynRetrans", "TCPTimeouts", "TCPReqQFullDrop")


def _kernel_counters() -> dict[str, int]:
    out: dict[str, int] = {}
    for table in ("/proc/net/netstat", "/proc/net/snmp"):
        try:
            lines = Path(table).read_text().splitlines()
        except OSError:
            continue
        for names, values in zip(lines[::2], lines[1::2], strict=False):
            for name, value in zip(names.split()[1:], values.split()[1:], strict=False):
                if name in _KERNEL_COUNTERS:
                    out[name] = int(value)
    return out


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ---------------------------------------------------------------- the paced upstream


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def upstream_role(port: int) -> None:
    """Anthropic Messages at /v1/messages: the head at once, then a delta every FRAME_GAP_S on an
    absolute schedule (no drift), each stamped ``t<monotonic ns>z``."""
    import uvloop
    from aiohttp import web

    _raise_fd_limit()
    message = {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 24000, "output_tokens": 1},
    }
    head = _event("message_start", {"type": "message_start", "message": message}) + _event(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    )
    before, after = _event(
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "@T@"}},
    ).split(b"@T@")
    tail = (
        _event("content_block_stop", {"type": "content_block_stop", "index": 0})
        + _event(
            "message_delta",
            {
                "type": "message_delta",
                "usage": {"output_tokens": FRAMES},
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            },
        )
        + _event("message_stop", {"type": "message_stop"})
    )

    async def messages(request: web.Request) -> web.StreamResponse:
        frames = WARMUP_FRAMES if _WARMUP.search(await request.read()) else FRAMES
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        await response.write(head)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for k in range(1, frames + 1):
            delay = start + k * FRAME_GAP_S - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await response.write(before + b"t%dz" % time.monotonic_ns() + after)
        await response.write(tail)
        await response.write_eof()
        return response

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.add_routes([web.post("/v1/messages", messages), web.get("/health", health)])
    web.run_app(
        app, host=HOST, port=port, print=None, access_log=None, backlog=4096, loop=uvloop.new_event_loop()
    )


# ---------------------------------------------------------------- the client


def _body_template() -> tuple[bytes, bytes]:
    from ccrouter.testing.claude_code import claude_code_request

    body = claude_code_request(model=MODEL, stream=True)
    body["system"][0]["text"] = f"x-anthropic-billing-header: cc_version=2.1.197.{NONCE.decode()};"
    body["messages"][-1]["content"].append({"type": "text", "text": f"turn {NONCE.decode()}"})
    first, _, rest = orjson.dumps(body).partition(NONCE)
    return first, rest


def _fill(template: tuple[bytes, bytes], number: int) -> bytes:
    return template[0] + b"%010d" % number + template[1].replace(NONCE, b"%010d" % number)


async def _one(session: Any, url: str, body: bytes, delay: float, began: float) -> dict[str, Any]:
    """One stream: sent ``delay`` s after ``began``; its ttfb, per-delta transit times (ms), outcome."""
    await asyncio.sleep(max(0.0, began + delay - time.perf_counter()))
    sent = time.perf_counter()
    out: dict[str, Any] = {"ok": False, "sent_s": sent - began, "ttfb_ms": None, "transit_ms": []}
    transit: list[float] = out["transit_ms"]
    try:
        async with session.post(url, data=body, headers=_HEADERS) as response:
            carry = b""
            tail = b""
            async for chunk in response.content.iter_any():
                now_ns = time.monotonic_ns()
                if out["ttfb_ms"] is None:
                    out["ttfb_ms"] = (time.perf_counter() - sent) * 1000
                data = carry + chunk
                end = 0
                for match in _STAMP.finditer(data):
                    transit.append((now_ns - int(match.group(1))) / 1e6)
                    end = match.end()
                carry = data[end:][-64:]
                tail = (tail + chunk)[-256:]
            out["status"] = response.status
            frames = WARMUP_FRAMES if _WARMUP.search(body) else FRAMES
            out["ok"] = response.status == 200 and len(transit) == frames and b"message_stop" in tail
            if not out["ok"]:
                out["error"] = f"{response.status}, {len(transit)} deltas: {tail[-160:]!r}"
    except Exception as exc:  # the measurement's boundary: any failure is a failed stream
        out["error"] = f"{type(exc).__name__}: {exc}"[:300]
    out["elapsed_s"] = time.perf_counter() - sent
    return out


_HEADERS = {
    "content-type": "application/json",
    "anthropic-version": "2023-06-01",
    "x-api-key": "sk-bench-client",
}


async def _client(url: str, streams: int, spread_s: float, first: int) -> dict[str, Any]:
    import aiohttp

    template = _body_template()
    bodies = [_fill(template, first + i) for i in range(streams)]
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S, sock_connect=30)
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        began = time.perf_counter() + 0.05
        results = await asyncio.gather(
            *(_one(session, url, bodies[i], spread_s * i / streams, began) for i in range(streams))
        )
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter() - wall0
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    return {
        "streams": results,
        "client_cpu_pct": 100 * cpu / wall,
        "wall_s": wall,
        "body_bytes": len(bodies[0]),
    }


def client_role(spec_path: Path) -> None:
    import uvloop

    _raise_fd_limit()
    spec = json.loads(spec_path.read_text())
    result = uvloop.run(_client(spec["url"], spec["streams"], spec["spread_s"], spec["first"]))
    Path(spec["out"]).write_text(json.dumps(result))


# ---------------------------------------------------------------- the run


def _ccrouter_config(upstream: str) -> dict[str, Any]:
    """As a Claude Code user writes it (every scenario routed, long context on so tokens are
    counted), one anthropic provider at the fake; the ledger as configured by default."""
    route = f"fake,{MODEL}"
    return {
        "server": {"host": HOST, "port": 0, "log_level": "warning"},
        "providers": [
            {
                "name": "fake",
                "type": "anthropic",
                "base_url": upstream,
                "api_key": "sk-fake",
                "models": [MODEL],
            }
        ],
        "router": {
            "default": route,
            "background": route,
            "think": route,
            "long_context": route,
            "long_context_threshold": 60000,
        },
    }


def _start(
    launcher: Launcher, kind: str, upstream: str, workdir: Path, variant: str | None
) -> tuple[int, int]:
    port = free_port()
    me = str(Path(__file__).resolve())
    if kind == "floor":
        argv = [sys.executable, me, "--role", "floor", "--port", str(port), "--upstream", upstream]
        proc, _ = launcher.start(f"floor-{port}", argv, port, "/health")
        return proc.pid, port
    folder = workdir / f"ccrouter-{port}"
    folder.mkdir()
    config = folder / "config.yaml"
    config.write_bytes(orjson.dumps(_ccrouter_config(upstream), option=orjson.OPT_INDENT_2))
    argv = [sys.executable, "-m", "ccrouter.cli.main", "serve", "--config", str(config), "--port", str(port)]
    env = {"CCROUTER_CONFIG": str(config), "NO_COLOR": "1"}
    if variant:
        env["PYTHONPATH"] = str(Path(variant).resolve())
    proc, _ = launcher.start(f"{kind}-{port}", argv, port, "/health", env)
    return proc.pid, port


def _client_run(
    workdir: Path, url: str, streams: int, spread_s: float, first: int
) -> tuple[dict[str, Any], subprocess.Popen[bytes]]:
    spec_path, out_path = workdir / f"spec-{first}.json", workdir / f"out-{first}.json"
    spec_path.write_text(
        json.dumps(
            {"url": url, "streams": streams, "spread_s": spread_s, "first": first, "out": str(out_path)}
        )
    )
    argv = [sys.executable, str(Path(__file__).resolve()), "--role", "client", "--spec", str(spec_path)]
    proc = subprocess.Popen(argv, start_new_session=True)
    return {"out": out_path}, proc


def _trial(
    kind: str,
    upstream: str,
    upstream_pids: list[int],
    workdir: Path,
    streams: int,
    variant: str | None,
    counter: list[int],
) -> dict[str, Any]:
    """One target, started fresh (so memory and state owe nothing to an earlier level), under
    ``streams`` concurrent streams."""
    launcher = Launcher(workdir)
    try:
        pid, port = _start(launcher, kind, upstream, workdir, variant)
        return _measure(pid, port, upstream_pids, workdir, streams, counter)
    finally:
        launcher.stop_all()


def _measure(
    pid: int, port: int, upstream_pids: list[int], workdir: Path, streams: int, counter: list[int]
) -> dict[str, Any]:
    url = f"http://{HOST}:{port}/v1/messages"
    pids = server_pids(pid, port)
    try:
        # Warm-up: a few streams (imports, pools, first-use caches), not recorded.
        handle, proc = _client_run(workdir, url, WARMUP_STREAMS, 0.0, WARMUP_FIRST + counter[0])
        proc.wait(timeout=CLIENT_TIMEOUT_S + 30)
        time.sleep(0.5)
        pids = server_pids(pid, port)
        before = rss_mb(pids)
        cpu0, up0, t0 = cpu_ticks(pids), cpu_ticks(upstream_pids), time.perf_counter()
        kernel0 = _kernel_counters()
        handle, proc = _client_run(workdir, url, streams, OPEN_WITHIN_S, counter[0])
        counter[0] += streams
        peak = before
        deadline = time.perf_counter() + CLIENT_TIMEOUT_S + 60
        while proc.poll() is None and time.perf_counter() < deadline:
            peak = max(peak, rss_mb(pids))
            time.sleep(0.2)
        if proc.poll() is None:
            raise RuntimeError(f"the client at {streams} streams did not finish")
        wall = time.perf_counter() - t0
        cpu1, up1 = cpu_ticks(pids), cpu_ticks(upstream_pids)
        kernel = {k: v - kernel0.get(k, 0) for k, v in _kernel_counters().items()}
        if proc.returncode != 0:
            raise RuntimeError(f"the client failed (exit {proc.returncode})")
        result = json.loads(Path(handle["out"]).read_text())
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
    tick = 1 / os.sysconf("SC_CLK_TCK")
    result["rss_before_mb"], result["rss_peak_mb"] = before, peak
    result["kernel"] = kernel
    result["server_cpu_pct"] = 100 * (cpu1 - cpu0) * tick / wall
    result["upstream_cpu_pct"] = 100 * (up1 - up0) * tick / wall
    return result


def summarise(result: dict[str, Any], streams: int) -> dict[str, Any]:
    rows = result["streams"]
    ok = [r for r in rows if r["ok"]]
    ttfb = [r["ttfb_ms"] for r in rows if r["ttfb_ms"] is not None and r.get("status") == 200]
    transit = [t for r in ok for t in r["transit_ms"]]
    gaps = [b - a for r in ok for a, b in zip(r["transit_ms"], r["transit_ms"][1:], strict=False)]
    errors: dict[str, int] = {}
    for r in rows:
        if not r["ok"]:
            key = re.sub(r"\d+", "N", r.get("error", "?"))[:120]
            errors[key] = errors.get(key, 0) + 1
    return {
        "streams": streams,
        "ok": len(ok),
        "success_pct": 100 * len(ok) / streams,
        "ttfb_p50_ms": pct(ttfb, 50),
        "ttfb_p99_ms": pct(ttfb, 99),
        "gap_p99_ms": pct(gaps, 99),
        "transit_p99_ms": pct(transit, 99),
        "mem_kb_per_stream": 1024 * (result["rss_peak_mb"] - result["rss_before_mb"]) / streams,
        "rss_before_mb": result["rss_before_mb"],
        "rss_peak_mb": result["rss_peak_mb"],
        "last_sent_s": max(r["sent_s"] for r in rows),
        "server_cpu_pct": result["server_cpu_pct"],
        "upstream_cpu_pct": result["upstream_cpu_pct"],
        "client_cpu_pct": result["client_cpu_pct"],
        "body_bytes": result["body_bytes"],
        "kernel": result["kernel"],
        "errors": errors,
    }


_COLUMNS = (
    ("success_pct", "ok %", "{:.1f}"),
    ("ttfb_p50_ms", "ttfb p50 ms", "{:.0f}"),
    ("ttfb_p99_ms", "ttfb p99 ms", "{:.0f}"),
    ("gap_p99_ms", "+gap p99 ms", "{:.1f}"),
    ("transit_p99_ms", "lag p99 ms", "{:.1f}"),
    ("mem_kb_per_stream", "KB/stream", "{:.0f}"),
)


def table(summary: dict[int, dict[str, dict[str, Any]]]) -> str:
    head = "| N | target | " + " | ".join(c[1] for c in _COLUMNS) + " | cpu % gw/up/client |"
    lines = [head, "|" + "---|" * (len(_COLUMNS) + 3)]
    for streams, rows in summary.items():
        floor = rows["floor"]
        for name, row in rows.items():
            cells = []
            for key, _, fmt in _COLUMNS:
                cell = fmt.format(row[key])
                if name != "floor" and key not in ("success_pct", "transit_p99_ms") and floor[key] > 0:
                    cell += f" ({row[key] / floor[key]:.2f}x)"
                cells.append(cell)
            cpu = f"{row['server_cpu_pct']:.0f}/{row['upstream_cpu_pct']:.0f}/{row['client_cpu_pct']:.0f}"
            lines.append(f"| {streams} | {name} | " + " | ".join(cells) + f" | {cpu} |")
    return "\n".join(lines)


def checks(summary: dict[int, dict[str, dict[str, Any]]]) -> list[tuple[str, bool]]:
    out = []
    for streams, rows in summary.items():
        floor = rows["floor"]
        for name, row in rows.items():
            if name == "floor":
                continue
            out.append((f"{name} @{streams}: success 100% ({row['ok']}/{streams})", row["ok"] == streams))
            for key, label in (
                ("ttfb_p50_ms", "ttfb p50"),
                ("ttfb_p99_ms", "ttfb p99"),
                ("gap_p99_ms", "added gap p99"),
                ("mem_kb_per_stream", "memory per stream"),
            ):
                ratio = row[key] / floor[key] if floor[key] > 0 else float("inf")
                out.append((f"{name} @{streams}: {label} {ratio:.2f}x the floor (<= 2x)", ratio <= 2.0))
    return out


def run(args: argparse.Namespace) -> int:
    _raise_fd_limit()
    levels = [int(n) for n in args.levels.split(",")]
    kinds = ["floor", "ccrouter"] + [f"ccrouter@{Path(v).name}" for v in args.variant]
    variants = {f"ccrouter@{Path(v).name}": v for v in args.variant}
    summary: dict[int, dict[str, dict[str, Any]]] = {}
    raw: dict[str, Any] = {}
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ccrouter-bench-conc-") as tmp:
        workdir = Path(tmp)
        launcher = Launcher(workdir)
        try:
            up_port = free_port()
            argv = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--role",
                "upstream",
                "--port",
                str(up_port),
            ]
            up_proc, _ = launcher.start("upstream", argv, up_port, "/health")
            upstream = f"http://{HOST}:{up_port}"
            upstream_pids = server_pids(up_proc.pid, up_port)
            counter = [1]
            for index, streams in enumerate(levels):
                order = kinds if index % 2 == 0 else kinds[::-1]
                rows: dict[str, dict[str, Any]] = {}
                for kind in order:
                    log(f"{kind}: {streams} streams")
                    result = _trial(
                        kind, upstream, upstream_pids, workdir, streams, variants.get(kind), counter
                    )
                    rows[kind] = summarise(result, streams)
                    if args.raw:
                        raw[f"{kind}@{streams}"] = result
                    log(f"  {json.dumps({k: v for k, v in rows[kind].items() if k != 'errors'})}")
                    if rows[kind]["errors"]:
                        log(f"  errors: {rows[kind]['errors']}")
                summary[streams] = {kind: rows[kind] for kind in kinds}
        finally:
            launcher.stop_all()
    elapsed = time.perf_counter() - began
    first = next(iter(summary.values()))["floor"]
    info = (
        f"{FRAMES} deltas {FRAME_GAP_S * 1000:.0f} ms apart ({STREAM_S:g} s) per stream, N opened within "
        f"{OPEN_WITHIN_S:g} s; body {first['body_bytes']} B (Claude Code shaped); floor: unbounded pool, "
        f"backlog {FLOOR_BACKLOG}; {os.cpu_count()} CPUs; Python {platform.python_version()}; "
        f"somaxconn {Path('/proc/sys/net/core/somaxconn').read_text().strip()}"
    )
    print(info)
    print(table(summary))
    print(
        "(n.nnx): ratio to the floor at the same N; +gap: what the path added to the 50 ms gap between "
        "two deltas; lag: delta sent -> received; cpu: % of one core over the trial"
    )
    found = checks(summary)
    for what, ok in found:
        print(f"{'PASS' if ok else 'FAIL'}  {what}")
    for streams, rows in summary.items():
        for name, row in rows.items():
            if row["errors"]:
                print(f"{name} @{streams} failures: {row['errors']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"info": info, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "elapsed_s": elapsed,
               "summary": summary, "checks": found, "raw": raw or None}  # fmt: skip
    path = RESULTS / f"concurrency-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(payload, indent=2))
    (RESULTS / "concurrency-latest.json").write_text(json.dumps(payload, indent=2))
    print(f"total {elapsed:.0f} s; wrote {path}")
    return 0 if all(ok for _, ok in found) else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)), help="concurrent streams per level")
    parser.add_argument("--variant", action="append", default=[], metavar="DIR",
                        help="also run ccrouter from DIR/ccrouter (PYTHONPATH=DIR)")  # fmt: skip
    parser.add_argument("--raw", action="store_true", help="keep every stream's samples in the JSON")
    parser.add_argument("--role", choices=["upstream", "floor", "client"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "upstream":
        upstream_role(args.port)
    elif args.role == "floor":
        import floor

        _raise_fd_limit()
        floor.run(args.port, args.upstream, limit=0, backlog=FLOOR_BACKLOG)
    elif args.role == "client":
        client_role(Path(args.spec))
    else:
        # SIGTERM (make interrupted, a CI timeout) must still stop the servers: unwind through finally.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        return run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
