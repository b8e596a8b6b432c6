"""Routing simulation benchmark: the same trace of Claude-Code-like requests against four fake
providers with different prices, latencies and outage windows, once per routing strategy (through the
real gateway) and once per baseline (plain round-robin; a fixed priority list with stamina retries,
both calling the fakes directly).

    .venv/bin/python bench/routing/run.py [--rate 25] [--seconds 8]

Providers (all Anthropic wire, same model):
  premium  $3 / $15 per Mtok, 10 ms per chunk,  429 storm (Retry-After: 2) from 1.5 s to 5 s
  budget   $0.3 / $1.2,       5 ms per chunk,   5xx burst (500/502/503/529) from 4 s to 7 s
  slow     $1 / $4,           80 ms per chunk,  healthy but slow
  flaky    $0.5 / $2,         10 ms per chunk,  drops connections before the first byte 0.5 s - 3.5 s
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import stamina
import structlog
from aiohttp.test_utils import TestServer

from ccrouter.app import create_app
from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream, Fault, RecordedRequest, Reply
from ccrouter.testing.claude_code import claude_code_request

MODEL = "claude-sonnet-4-6"
STRATEGIES = ["intelligent", "cost", "performance", "availability", "priority"]


@dataclass(frozen=True)
class Spec:
    name: str
    price_in: float
    price_out: float
    chunk_delay: float
    outage: tuple[float, float] | None
    fault: Callable[[int], Fault] | None


SPECS = [
    Spec("premium", 3.0, 15.0, 0.010, (1.5, 5.0), lambda i: Fault("status", status=429, retry_after=2)),
    Spec(
        "budget", 0.3, 1.2, 0.005, (4.0, 7.0), lambda i: Fault("status", status=(500, 502, 503, 529)[i % 4])
    ),
    Spec("slow", 1.0, 4.0, 0.080, None, None),
    Spec("flaky", 0.5, 2.0, 0.010, (0.5, 3.5), lambda i: Fault("drop_before_first_byte")),
]
PRICES = {s.name: (s.price_in, s.price_out) for s in SPECS}


@dataclass
class Outcome:
    ok: bool
    latency: float
    cost: float
    fallbacks: int


@dataclass
class Result:
    name: str
    outcomes: list[Outcome] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        ok = [o for o in self.outcomes if o.ok]
        latencies = sorted(o.latency for o in ok) or [float("nan")]
        return {
            "strategy": self.name,
            "success": len(ok) / len(self.outcomes),
            "p50_s": statistics.median(latencies),
            "p95_s": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
            "cost_usd": sum(o.cost for o in ok),
            "fallbacks": sum(o.fallbacks for o in self.outcomes),
        }


def _reply_for(spec: Spec) -> Callable[[RecordedRequest], Reply]:
    def reply(_: RecordedRequest) -> Reply:
        return Reply(text="Done. " * 30, output_tokens=120, chunk_size=12, chunk_delay=spec.chunk_delay)

    return reply


async def _outage(fake: FakeUpstream, spec: Spec) -> None:
    if spec.outage is None or spec.fault is None:
        return
    start, end = spec.outage
    await asyncio.sleep(start)
    fake.script(*(spec.fault(i) for i in range(20_000)))
    await asyncio.sleep(end - start)
    fake.reset()


def _trace(count: int) -> list[dict[str, Any]]:
    """Claude-Code-shaped bodies, 70% streamed, spread over 12 sessions."""
    base = claude_code_request(turns=4)
    bodies = []
    for i in range(count):
        body = dict(base)
        body["stream"] = i % 10 < 7
        body["max_tokens"] = 4096
        user = {"device_id": "bench", "account_uuid": "", "session_id": f"session-{i % 12}"}
        body["metadata"] = {"user_id": json.dumps(user)}
        bodies.append(body)
    return bodies


def _usage_cost(provider: str, raw: bytes, stream: bool) -> float:
    tokens_in = tokens_out = 0
    if stream:
        for line in raw.split(b"\n"):
            if not line.startswith(b"data: "):
                continue
            event = orjson.loads(line[6:])
            if event.get("type") == "message_start":
                tokens_in = event["message"]["usage"].get("input_tokens", 0)
            elif event.get("type") == "message_delta":
                tokens_out = event.get("usage", {}).get("output_tokens", tokens_out)
    else:
        usage = orjson.loads(raw)["usage"]
        tokens_in, tokens_out = usage["input_tokens"], usage["output_tokens"]
    price_in, price_out = PRICES[provider]
    return (tokens_in * price_in + tokens_out * price_out) / 1e6


class _Failed(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


async def _call(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any]
) -> tuple[dict[str, str], bytes]:
    """One POST; raises _Failed unless a complete answer came back (message_stop for streams)."""
    data = orjson.dumps(body)
    try:
        async with session.post(url + "/v1/messages", data=data, headers={"x-api-key": "k"}) as response:
            raw = await response.read()
            headers = dict(response.headers)
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise _Failed(599) from exc
    if status != 200 or (body["stream"] and b"event: message_stop" not in raw):
        raise _Failed(status)
    return headers, raw


async def _replay(
    name: str,
    bodies: list[dict[str, Any]],
    rate: float,
    send: Callable[[dict[str, Any]], Coroutine[Any, Any, Outcome]],
) -> Result:
    result = Result(name)
    tasks: list[asyncio.Task[Outcome]] = []
    start = time.perf_counter()
    for index, body in enumerate(bodies):
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(body)))
    result.outcomes = list(await asyncio.gather(*tasks))
    return result


def _settings(urls: dict[str, str], strategy: str) -> Settings:
    timeouts = {"connect": 2, "first_byte": 3, "idle": 3, "total": 30}
    return Settings.model_validate(
        {
            "providers": [
                {
                    "name": name,
                    "type": "anthropic",
                    "base_url": url,
                    "api_key": f"sk-{name}",
                    "models": [MODEL],
                    "timeouts": timeouts,
                }
                for name, url in urls.items()
            ],
            "router": {
                "default": f"premium,{MODEL}",
                "fallback": {"default": [f"{n},{MODEL}" for n in urls if n != "premium"]},
            },
            "routing": {"strategy": strategy},
            "prices": {f"{s.name},{MODEL}": {"input": s.price_in, "output": s.price_out} for s in SPECS},
        }
    )


async def _through_gateway(
    urls: dict[str, str], strategy: str, bodies: list[dict[str, Any]], rate: float
) -> Result:
    with tempfile.TemporaryDirectory() as folder:
        server = TestServer(
            create_app(_settings(urls, strategy), config_dir=Path(folder)), host="127.0.0.1", port=0
        )
        await server.start_server()
        gateway = str(server.make_url("")).rstrip("/")
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:

                async def send(body: dict[str, Any]) -> Outcome:
                    started = time.perf_counter()
                    try:
                        headers, raw = await _call(session, gateway, body)
                    except _Failed:
                        return Outcome(False, time.perf_counter() - started, 0.0, 0)
                    tried = headers.get("x-ccrouter-fallbacks", "0")
                    fallbacks = 0 if tried == "0" else tried.count("=")
                    cost = _usage_cost(headers["x-ccrouter-provider"], raw, body["stream"])
                    return Outcome(True, time.perf_counter() - started, cost, fallbacks)

                return await _replay(strategy, bodies, rate, send)
        finally:
            await server.close()


async def _round_robin(urls: dict[str, str], bodies: list[dict[str, Any]], rate: float) -> Result:
    turn = itertools.cycle(list(urls))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def send(body: dict[str, Any]) -> Outcome:
            name = next(turn)
            started = time.perf_counter()
            try:
                _, raw = await _call(session, urls[name], {**body, "model": MODEL})
            except _Failed:
                return Outcome(False, time.perf_counter() - started, 0.0, 0)
            return Outcome(True, time.perf_counter() - started, _usage_cost(name, raw, body["stream"]), 0)

        return await _replay("round-robin", bodies, rate, send)


async def _priority_retries(urls: dict[str, str], bodies: list[dict[str, Any]], rate: float) -> Result:
    """Each provider in a fixed order, 3 attempts each with stamina's exponential backoff."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def send(body: dict[str, Any]) -> Outcome:
            started = time.perf_counter()
            attempts = 0
            for name in urls:
                try:
                    async for attempt in stamina.retry_context(
                        on=_Failed, attempts=3, wait_initial=0.1, wait_max=1.0, wait_jitter=0.1
                    ):
                        with attempt:
                            attempts += 1
                            _, raw = await _call(session, urls[name], {**body, "model": MODEL})
                except _Failed:
                    continue
                cost = _usage_cost(name, raw, body["stream"])
                return Outcome(True, time.perf_counter() - started, cost, attempts - 1)
            return Outcome(False, time.perf_counter() - started, 0.0, attempts - 1)

        return await _replay("priority+retries", bodies, rate, send)


async def main(rate: float, seconds: float) -> list[dict[str, Any]]:
    bodies = _trace(int(rate * seconds))
    rows = []
    runs: list[tuple[str, Callable[[dict[str, str]], Awaitable[Result]]]] = [
        *((s, functools.partial(_through_gateway, strategy=s, bodies=bodies, rate=rate)) for s in STRATEGIES),
        ("round-robin", functools.partial(_round_robin, bodies=bodies, rate=rate)),
        ("priority+retries", functools.partial(_priority_retries, bodies=bodies, rate=rate)),
    ]
    for name, run in runs:
        fakes = {
            spec.name: FakeUpstream(default=_reply_for(spec), rate_limit_headers=False) for spec in SPECS
        }
        urls = {name: await fake.start() for name, fake in fakes.items()}
        outages = [asyncio.create_task(_outage(fakes[s.name], s)) for s in SPECS]
        try:
            result = await run(urls)
        finally:
            for task in outages:
                task.cancel()
            for fake in fakes.values():
                await fake.stop()
        rows.append(result.row())
        print(f"  {name}: done", file=sys.stderr)
    return rows


def _print(rows: list[dict[str, Any]], count: int) -> None:
    print(f"routing benchmark: {count} requests, 4 providers with outages (see bench/routing/run.py)")
    print(f"{'strategy':<18}{'success':>9}{'p50 s':>8}{'p95 s':>8}{'cost $':>10}{'fallbacks':>11}")
    for row in rows:
        print(
            f"{row['strategy']:<18}{row['success']:>9.1%}{row['p50_s']:>8.3f}{row['p95_s']:>8.3f}"
            f"{row['cost_usd']:>10.4f}{row['fallbacks']:>11}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=25.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=8.0, help="trace length")
    args = parser.parse_args()
    # The baseline's retries are expected: keep stamina's per-retry lines and the gateway's request
    # log (structlog, unconfigured: stdout) out of the report.
    stamina.instrumentation.set_on_retry_hooks([])
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    results = asyncio.run(main(args.rate, args.seconds))
    _print(results, int(args.rate * args.seconds))
