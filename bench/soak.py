"""Long runs against one ccrouter: RSS growth over tens of thousands of requests, and the load that
``--profile`` samples. Bounded by a request count and a deadline, whichever comes first."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from client import KEEPALIVE_S, Probe
from common import TICK_MS, cpu_ticks, log, rss_mb
from payloads import request_bodies
from targets import server_pids

STREAM_EVERY = 10  # by default one request in ten is streamed (1: all of them, 0: none)


def _streamed(number: int, every: int) -> bool:
    return every > 0 and number % every == 0


async def _soak(
    target: dict[str, Any],
    total: int,
    checkpoints: list[int],
    concurrency: int,
    deadline_s: float,
    every: int,
) -> dict[str, Any]:
    bodies = request_bodies()
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=concurrency * 2, keepalive_timeout=KEEPALIVE_S)
    rows: list[dict[str, Any]] = []
    errors = 0
    sent = 0
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        probe = Probe(session, target, bodies)
        pids = server_pids(target["pid"], target["port"])
        started = time.perf_counter()
        cpu0 = cpu_ticks(pids)
        rows.append({"requests": 0, "rss_mb": rss_mb(pids), "elapsed_s": 0.0, "cpu_ms_per_req": None})
        pending = sorted(c for c in checkpoints if c <= total)
        stop_at = started + deadline_s

        async def worker() -> None:
            nonlocal sent, errors
            while sent < total and time.perf_counter() < stop_at:
                sent += 1
                number = sent
                try:
                    if _streamed(number, every):
                        await probe.stream()
                    else:
                        await probe.once()
                except (aiohttp.ClientError, TimeoutError, RuntimeError) as exc:
                    errors += 1
                    if errors <= 3:
                        log(f"soak: {type(exc).__name__}: {exc}")
                while pending and number >= pending[0]:
                    done = pending.pop(0)
                    elapsed = time.perf_counter() - started
                    cpu = (cpu_ticks(pids) - cpu0) * TICK_MS / done
                    rows.append(
                        {
                            "requests": done,
                            "rss_mb": rss_mb(pids),
                            "elapsed_s": elapsed,
                            "cpu_ms_per_req": cpu,
                        }
                    )
                    log(f"soak: {done} requests, RSS {rows[-1]['rss_mb']:.1f} MB, {elapsed:.0f} s")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        if rows[-1]["requests"] != sent:  # stopped by the deadline: say where it got to
            elapsed = time.perf_counter() - started
            cpu = (cpu_ticks(pids) - cpu0) * TICK_MS / max(1, sent)
            row = {"requests": sent, "rss_mb": rss_mb(pids), "elapsed_s": elapsed, "cpu_ms_per_req": cpu}
            rows.append(row)
    return {"rows": rows, "sent": sent, "errors": errors}


def soak(
    target: dict[str, Any], total: int, concurrency: int, deadline_s: float, every: int = STREAM_EVERY
) -> dict[str, Any]:
    import uvloop

    checkpoints = [1000, 5000, 10000, 20000, 50000, 100000]
    return uvloop.run(_soak(target, total, checkpoints, concurrency, deadline_s, every))


def soak_text(result: dict[str, Any]) -> str:
    lines = [f"{'requests':>9} {'RSS MB':>8} {'vs 5k':>7} {'elapsed s':>10} {'cpu/req ms':>11}"]
    at_5k = next((r["rss_mb"] for r in result["rows"] if r["requests"] == 5000), None)
    for row in result["rows"]:
        growth = f"{(row['rss_mb'] / at_5k - 1) * 100:+.1f}%" if at_5k and row["requests"] >= 5000 else "-"
        cpu = f"{row['cpu_ms_per_req']:.2f}" if row["cpu_ms_per_req"] is not None else "-"
        lines.append(
            f"{row['requests']:>9} {row['rss_mb']:>8.1f} {growth:>7} {row['elapsed_s']:>10.1f} {cpu:>11}"
        )
    lines.append(f"sent {result['sent']}, errors {result['errors']}")
    return "\n".join(lines)


async def _load(target: dict[str, Any], seconds: float, every: int) -> int:
    """Sequential requests (one in ``every`` streamed) for ``seconds``: what the profiler samples."""
    bodies = request_bodies()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        probe = Probe(session, target, bodies)
        count = 0
        stop_at = time.perf_counter() + seconds
        while time.perf_counter() < stop_at:
            count += 1
            await (probe.stream() if _streamed(count, every) else probe.once())
        return count


def load(target: dict[str, Any], seconds: float, every: int = STREAM_EVERY) -> int:
    import uvloop

    return uvloop.run(_load(target, seconds, every))
