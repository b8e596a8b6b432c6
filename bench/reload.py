#!/usr/bin/env python3
"""A reload under load: 200 concurrent streams through ``ccrouter serve`` while its config file is
rewritten 10 times (``make bench-reload``).

    .venv/bin/python bench/reload.py            # ~30 s
    .venv/bin/python bench/reload.py --quick    # a smoke run: 50 streams, 4 rewrites

A fake Anthropic upstream (its own process; the config names it twice, as providers a and b) starts
each stream at once and then sends ``FRAMES`` text frames ``FRAME_GAP_S`` apart. After a warm-up
that opens both pools, ``streams`` clients each send one streamed request after another while the
config file is rewritten every ``interval_s`` seconds, alternately moving the default route to the
other provider and changing b's timeouts (so b's pool is replaced while streams still run on the
old one). Every time to first byte and chunk gap is sorted by when it ended: within ``window_s`` of
a rewrite ("during reloads") or not (the same run's own baseline, so the machine's load, which
drifts, weighs on both alike). It reports requests, dropped requests (any status but 200, or a
stream without its ``message_stop``) and both distributions, and exits non-zero when a request
dropped, a rewrite was not applied, or reloads added more than 50 ms at p99. Everything listens on
127.0.0.1, on free ports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import yaml
from common import HOST, free_port, log, pct
from targets import Launcher

FRAMES = 10
FRAME_GAP_S = 0.2
MODEL = "claude-sonnet-4-6"
BODY = {"model": MODEL, "max_tokens": 256, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
SPIKE_LIMIT_MS = 50.0


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def upstream_role(port: int) -> None:
    """An Anthropic upstream whose stream starts at once, then sends a text frame every
    ``FRAME_GAP_S``: the time to first byte is the gateway's own, the gaps the upstream's pace."""
    from aiohttp import web

    message = {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 1},
    }
    head = _event("message_start", {"type": "message_start", "message": message}) + _event(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    )
    frame = _event(
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x" * 8}},
    )
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
        await request.read()
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        await response.write(head)
        for _ in range(FRAMES):
            await asyncio.sleep(FRAME_GAP_S)
            await response.write(frame)
        await response.write(tail)
        await response.write_eof()
        return response

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.add_routes([web.post("/v1/messages", messages), web.get("/health", health)])
    web.run_app(app, host=HOST, port=port, print=None, access_log=None)


def config(upstream: str, default: str, b_total_s: float) -> dict[str, Any]:
    def provider(name: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "type": "anthropic",
            "base_url": upstream,
            "api_key": f"sk-bench-{name}",
            "models": [MODEL],
            **extra,
        }

    return {
        "server": {"host": HOST, "port": 0, "log_level": "warning"},
        "providers": [provider("a"), provider("b", timeouts={"total": b_total_s})],
        "router": {"default": f"{default},{MODEL}"},
        "alerts": {"enabled": False},
        "logging": {"requests": False},
    }


def write(path: Path, data: dict[str, Any]) -> None:
    """As an editor saves: a temporary file renamed over the config."""
    tmp = path.with_name(".config.yaml.tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    os.replace(tmp, path)


@dataclass
class Phase:
    """What the clients saw: each time to first byte and chunk gap with the moment it ended."""

    requests: int = 0
    dropped: int = 0
    errors: list[str] = field(default_factory=list)
    ttfb_ms: list[tuple[float, float]] = field(default_factory=list)
    gaps_ms: list[tuple[float, float]] = field(default_factory=list)
    providers: dict[str, int] = field(default_factory=dict)
    versions: set[str] = field(default_factory=set)


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"n": len(values), "p50": round(pct(values, 50), 1), "p99": round(pct(values, 99), 1),
            "max": round(max(values), 1)}  # fmt: skip


async def one_stream(session: Any, url: str, phase: Phase, body: dict[str, Any] = BODY) -> None:
    started = time.perf_counter()
    try:
        async with session.post(url, json=body) as response:
            last = None
            received = b""
            async for chunk in response.content.iter_any():
                now = time.perf_counter()
                if last is None:
                    phase.ttfb_ms.append((now, (now - started) * 1000))
                else:
                    phase.gaps_ms.append((now, (now - last) * 1000))
                last = now
                received += chunk
            phase.requests += 1
            provider = response.headers.get("x-ccrouter-provider", "?")
            phase.providers[provider] = phase.providers.get(provider, 0) + 1
            phase.versions.add(response.headers.get("x-ccrouter-config-version", "?"))
            if response.status != 200 or b'"type":"message_stop"' not in received:
                phase.dropped += 1
                phase.errors.append(f"{response.status}: {received[-200:]!r}")
    except Exception as exc:  # the measurement's boundary: any failure is a dropped request
        phase.requests += 1
        phase.dropped += 1
        phase.errors.append(repr(exc))


async def load(url: str, streams: int, seconds: float, phase: Phase, *, both: bool = False) -> None:
    """``streams`` clients, each streaming one request after another for ``seconds``; ``both``: half
    of them name provider a, half provider b (to open both pools before measuring)."""
    import aiohttp

    deadline = time.perf_counter() + seconds

    async def client(session: aiohttp.ClientSession, index: int) -> None:
        body = {**BODY, "model": f"{'ab'[index % 2]},{MODEL}"} if both else BODY
        # Spread over one stream's length, so requests start all the time, not in waves.
        await asyncio.sleep(FRAMES * FRAME_GAP_S * index / streams)
        while time.perf_counter() < deadline:
            await one_stream(session, url, phase, body)

    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(client(session, i) for i in range(streams)))


def rewrites(upstream: str, count: int) -> Iterator[dict[str, Any]]:
    default, total = "a", 600.0
    for i in range(count):
        if i % 2 == 0:
            default = "b" if default == "a" else "a"
        else:
            total += 1.0  # b's pool is replaced; streams on the old one finish on it
        yield config(upstream, default, total)


async def measure(url: str, path: Path, upstream: str, args: argparse.Namespace) -> dict[str, Any]:
    log(f"warming up: {args.streams} concurrent streams to both providers")
    warmup = Phase()
    await load(url, args.streams, 2.0, warmup, both=True)
    seconds = args.interval_s * (args.rewrites + 1)
    log(f"{args.streams} streams for {seconds:g} s, the config rewritten every {args.interval_s:g} s")
    phase = Phase()
    written: list[float] = []

    async def edit() -> None:
        for data in rewrites(upstream, args.rewrites):
            await asyncio.sleep(args.interval_s)
            written.append(time.perf_counter())
            write(path, data)

    await asyncio.gather(load(url, args.streams, seconds, phase), edit())

    def near(moment: float) -> bool:
        return any(0 <= moment - at <= args.window_s for at in written)

    def split(samples: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
        return [v for t, v in samples if near(t)], [v for t, v in samples if not near(t)]

    ttfb_near, ttfb_calm = split(phase.ttfb_ms)
    gaps_near, gaps_calm = split(phase.gaps_ms)
    reloading = {"ttfb_ms": _stats(ttfb_near), "chunk_gap_ms": _stats(gaps_near)}
    calm = {"ttfb_ms": _stats(ttfb_calm), "chunk_gap_ms": _stats(gaps_calm)}
    spike = {
        f"{metric}_{stat}": round(reloading[metric][stat] - calm[metric][stat], 1)
        for metric in ("ttfb_ms", "chunk_gap_ms")
        for stat in ("p99", "max")
    }
    return {
        "streams": args.streams,
        "rewrites": args.rewrites,
        "frame_gap_ms": FRAME_GAP_S * 1000,
        "requests": phase.requests + warmup.requests,
        "dropped": phase.dropped + warmup.dropped,
        "errors": (warmup.errors + phase.errors)[:5],
        "providers": phase.providers,
        "config_versions_seen": len(phase.versions),
        f"within_{args.window_s:g}s_of_a_rewrite": reloading,
        "otherwise": calm,
        "added_by_reloads": spike,
    }


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="ccrouter-bench-reload-") as tmp:
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
            launcher.start("upstream", argv, up_port, "/health")
            upstream = f"http://{HOST}:{up_port}"
            path = workdir / "config.yaml"
            write(path, config(upstream, "a", 600.0))
            port = free_port()
            serve = [
                sys.executable,
                "-m",
                "ccrouter.cli.main",
                "serve",
                "--config",
                str(path),
                "--port",
                str(port),
            ]
            launcher.start(
                "ccrouter", serve, port, "/health", {"CCROUTER_CONFIG": str(path), "NO_COLOR": "1"}
            )
            result = asyncio.run(measure(f"http://{HOST}:{port}/v1/messages", path, upstream, args))
        finally:
            launcher.stop_all()
    print(json.dumps(result, indent=2))
    spike = result["added_by_reloads"]
    failed = []
    if result["dropped"]:
        failed.append(f"{result['dropped']} requests dropped")
    if result["config_versions_seen"] < args.rewrites + 1:
        failed.append(f"only {result['config_versions_seen']} configuration versions served")
    if max(spike["ttfb_ms_p99"], spike["chunk_gap_ms_p99"]) > SPIKE_LIMIT_MS:
        failed.append(f"reloads added more than {SPIKE_LIMIT_MS:g} ms at p99")
    log("FAILED: " + "; ".join(failed) if failed else "ok: nothing dropped, no latency spike over 50 ms")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--rewrites", type=int, default=10)
    parser.add_argument("--interval-s", type=float, default=1.6, help="seconds between rewrites")
    parser.add_argument(
        "--window-s", type=float, default=0.5, help="samples this soon after a rewrite count as during it"
    )
    parser.add_argument("--quick", action="store_true", help="50 streams, 4 rewrites")
    parser.add_argument("--role", choices=["upstream"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "upstream":
        upstream_role(args.port)
        return 0
    if args.quick:
        args.streams, args.rewrites = 50, 4
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
