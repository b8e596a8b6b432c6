"""The measuring client, in its own process (aiohttp + uvloop, one keep-alive session per target).

Phases, each interleaved round-robin over the targets with the starting target rotated every round,
so machine drift touches every target alike:
  1. warm-up (pools filled, caches warm, nothing recorded);
  2. sequential non-streamed requests: latency, and the server's CPU time read from /proc around each
     target's own batch;
  3. sequential streamed requests: time to first body byte, and to the end of the stream;
  4. CONCURRENCY clients at once for a fixed time per target: requests per second.
Then the RSS of every server. All loops are bounded by the knobs below.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from common import cpu_ticks, log, rss_mb
from payloads import Bodies, request_bodies
from targets import CLIENT_KEY, server_pids

CONCURRENCY = 16
# Below uvicorn's default keep-alive (5 s, LiteLLM): the client drops an idle connection before the
# server does, so a request never lands on a connection the server is closing (a reset, not a result).
KEEPALIVE_S = 4.0
_BETAS = "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27"
REQUEST_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Knobs:
    rounds: int = 40  # sequential: rounds x per_round requests per target
    per_round: int = 50
    per_round_slow: int = 5  # peers take ~40 ms a request
    stream_rounds: int = 20
    stream_per_round: int = 20
    stream_per_round_slow: int = 4
    warmup: int = 60
    tput_seconds: float = 2.0  # per target, split into tput_slices interleaved slices
    tput_slices: int = 4

    @classmethod
    def quick(cls) -> Knobs:
        return cls(
            rounds=4,
            per_round=10,
            per_round_slow=2,
            stream_rounds=3,
            stream_per_round=4,
            stream_per_round_slow=2,
            warmup=10,
            tput_seconds=0.4,
            tput_slices=2,
        )


@dataclass
class Tally:
    lat_ms: list[float] = field(default_factory=list)
    cpu_ticks: int = 0
    ttfb_ms: list[float] = field(default_factory=list)
    stream_ms: list[float] = field(default_factory=list)
    stream_cpu_ticks: int = 0
    tput_n: int = 0
    tput_s: float = 0.0
    tput_cpu_ticks: int = 0
    tput_lat_ms: list[float] = field(default_factory=list)
    errors: int = 0
    warmup_errors: int = 0
    first_error: str = ""
    rss_end_mb: float = 0.0
    pids: list[int] = field(default_factory=list)

    def error(self, message: str) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = message[:300]
            log(f"client: {message[:300]}")


def _headers(wire: str, key: str = CLIENT_KEY) -> dict[str, str]:
    # What Claude Code / the OpenAI SDK send; a gateway without client auth ignores the key.
    if wire == "openai":
        return {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    return {
        "Content-Type": "application/json",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": _BETAS,
        "x-api-key": key,
        "Authorization": f"Bearer {key}",
    }


# One number per request, never repeated in a run: each body is new to every gateway (payloads.NONCE).
_NUMBERS = itertools.count(1)


class Probe:
    """Sends one target's requests and checks every answer."""

    def __init__(self, session: aiohttp.ClientSession, target: dict[str, Any], bodies: Bodies) -> None:
        self.session = session
        self.url: str = target["url"]
        wire = target["wire"]
        self.headers = _headers(wire, target.get("extra", {}).get("key", CLIENT_KEY))
        self.body = bodies.openai if wire == "openai" else bodies.anthropic
        self.stream_body = bodies.openai_stream if wire == "openai" else bodies.anthropic_stream
        self.stream_end = b"[DONE]" if wire == "openai" else b"message_stop"

    async def once(self) -> float:
        body = self.body.fill(next(_NUMBERS))
        started = time.perf_counter()
        async with self.session.post(self.url, data=body, headers=self.headers) as response:
            data = await response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200 or len(data) < 300:
            raise RuntimeError(f"{self.url}: HTTP {response.status} {data[:200]!r}")
        return elapsed

    async def stream(self) -> tuple[float, float]:
        first = 0.0
        tail = b""
        body = self.stream_body.fill(next(_NUMBERS))
        started = time.perf_counter()
        async with self.session.post(self.url, data=body, headers=self.headers) as response:
            async for chunk in response.content.iter_any():
                if not first:
                    first = time.perf_counter()
                tail = (tail + chunk)[-64:]
        ended = time.perf_counter()
        if response.status != 200 or self.stream_end not in tail:
            raise RuntimeError(f"{self.url}: stream HTTP {response.status}, ends with {tail!r}")
        return (first - started) * 1000, (ended - started) * 1000


async def _guard(tally: Tally, coro: Any) -> Any:
    try:
        return await coro
    except (aiohttp.ClientError, TimeoutError, RuntimeError) as exc:
        tally.error(f"{type(exc).__name__}: {exc}")
        return None


def _order(targets: list[dict[str, Any]], round_no: int) -> list[dict[str, Any]]:
    k = round_no % len(targets)
    return targets[k:] + targets[:k]


async def _sequential(
    targets: list[dict[str, Any]], probes: dict[str, Probe], tallies: dict[str, Tally], knobs: Knobs
) -> None:
    for round_no in range(knobs.rounds):
        for target in _order(targets, round_no):
            tally, probe = tallies[target["name"]], probes[target["name"]]
            count = knobs.per_round_slow if target["slow"] else knobs.per_round
            before = cpu_ticks(tally.pids)
            for _ in range(count):
                if (ms := await _guard(tally, probe.once())) is not None:
                    tally.lat_ms.append(ms)
            tally.cpu_ticks += cpu_ticks(tally.pids) - before


async def _streams(
    targets: list[dict[str, Any]], probes: dict[str, Probe], tallies: dict[str, Tally], knobs: Knobs
) -> None:
    for round_no in range(knobs.stream_rounds):
        for target in _order(targets, round_no):
            tally, probe = tallies[target["name"]], probes[target["name"]]
            count = knobs.stream_per_round_slow if target["slow"] else knobs.stream_per_round
            before = cpu_ticks(tally.pids)
            for _ in range(count):
                if (times := await _guard(tally, probe.stream())) is not None:
                    tally.ttfb_ms.append(times[0])
                    tally.stream_ms.append(times[1])
            tally.stream_cpu_ticks += cpu_ticks(tally.pids) - before


async def _throughput(
    targets: list[dict[str, Any]], probes: dict[str, Probe], tallies: dict[str, Tally], knobs: Knobs
) -> None:
    slice_s = knobs.tput_seconds / knobs.tput_slices
    for round_no in range(knobs.tput_slices):
        for target in _order(targets, round_no):
            tally, probe = tallies[target["name"]], probes[target["name"]]
            deadline = time.perf_counter() + slice_s
            done = 0

            async def worker(tally: Tally = tally, probe: Probe = probe, deadline: float = deadline) -> None:
                nonlocal done
                while time.perf_counter() < deadline:
                    ms = await _guard(tally, probe.once())
                    if ms is None:
                        return
                    tally.tput_lat_ms.append(ms)
                    done += 1

            before = cpu_ticks(tally.pids)
            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
            tally.tput_s += time.perf_counter() - started
            tally.tput_cpu_ticks += cpu_ticks(tally.pids) - before
            tally.tput_n += done


async def measure(targets: list[dict[str, Any]], knobs: Knobs) -> dict[str, Tally]:
    bodies = request_bodies()
    tallies = {t["name"]: Tally() for t in targets}
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    sessions = {
        t["name"]: aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=64, keepalive_timeout=KEEPALIVE_S), timeout=timeout
        )
        for t in targets
    }
    try:
        probes = {t["name"]: Probe(sessions[t["name"]], t, bodies) for t in targets}
        for target in targets:
            tally, probe = tallies[target["name"]], probes[target["name"]]
            warm = knobs.warmup // 5 if target["slow"] else knobs.warmup
            for _ in range(max(2, warm)):
                await _guard(tally, probe.once())
            for _ in range(3):
                await _guard(tally, probe.stream())
            await asyncio.gather(*(_guard(tally, probe.once()) for _ in range(CONCURRENCY)))
            # After the warm-up: servers that fork workers have them all by now.
            tally.pids = server_pids(target["pid"], target["port"]) if target["pid"] else []
            tally.warmup_errors, tally.errors = tally.errors, 0  # first_error is kept: it says why
        log("client: warm-up done")
        await _sequential(targets, probes, tallies, knobs)
        log("client: sequential latency done")
        await _streams(targets, probes, tallies, knobs)
        log("client: streaming done")
        await _throughput(targets, probes, tallies, knobs)
        log("client: throughput done")
        for target in targets:
            tally = tallies[target["name"]]
            tally.rss_end_mb = rss_mb(tally.pids) if tally.pids else 0.0
    finally:
        await asyncio.gather(*(s.close() for s in sessions.values()))
    return tallies


def run(targets: list[dict[str, Any]], knobs: Knobs) -> dict[str, Any]:
    import uvloop

    tallies = uvloop.run(measure(targets, knobs))
    return {name: vars(tally) for name, tally in tallies.items()}
