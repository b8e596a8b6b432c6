"""Three gateway processes behind nginx (round-robin) sharing Redis and PostgreSQL, fake providers A and
B (issue 17, "A test that proves it"): a breaker one instance opens holds for all (at most 3 more calls
to A until the one half-open probe), a session's turns on different instances stay on one provider, a
block budget is not overspent across the three, a SIGKILLed instance loses no completed request's
ledger row, and a rolling restart under 100 concurrent Claude-Code-shaped streams fails none."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import orjson
import pytest
import redis.asyncio as redis
from cluster_support import REDIS_URL, Cluster, require_nginx
from redis import __version__ as redis_version
from redis.driver_info import DriverInfo
from webhook_support import Receiver

from ccrouter.config_file import load_settings
from ccrouter.store import make_store
from ccrouter.testing import FakeUpstream, Fault, Reply
from ccrouter.testing.claude_code import claude_code_request
from ccrouter.testing.script import RecordedRequest
from ccrouter.testing.simulated import simulated_reply

MODEL = "claude-sonnet-4-6"
BODY = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
OPEN_S = 3.0


@dataclass
class Switch:
    """A fake's default answer, switchable: failing (500) or the simulated reply; counts calls."""

    failing: bool = False
    calls: list[float] = field(default_factory=list)

    def __call__(self, record: RecordedRequest) -> Reply | Fault:
        self.calls.append(time.monotonic())
        return Fault("status", status=500) if self.failing else simulated_reply(record)


@pytest.fixture(autouse=True)
def nginx() -> None:
    require_nginx()


@pytest.fixture
def switch_a() -> Switch:
    return Switch()


@pytest.fixture
async def fake_a(switch_a: Switch) -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream(default=switch_a, rate_limit_headers=False) as upstream:
        yield upstream


@pytest.fixture
async def fake_b() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream(rate_limit_headers=False) as upstream:
        yield upstream


def _document(a: FakeUpstream, b: FakeUpstream, **extra: Any) -> dict[str, Any]:
    return {
        "providers": [
            {"name": "a", "type": "anthropic", "base_url": a.url, "api_key": "sk-a", "models": [MODEL]},
            {"name": "b", "type": "anthropic", "base_url": b.url, "api_key": "sk-b", "models": [MODEL]},
        ],
        "router": {"default": f"a,{MODEL}"},
        "routing": {
            "strategy": "priority",
            "breaker": {"consecutive_failures": 3, "open_s": OPEN_S, "success_threshold": 1},
        },
        "server": {"drain_grace_s": 0.5, "drain_s": 30},
        "store": {"durable": True},
        **extra,
    }


async def _post(
    session: aiohttp.ClientSession, url: str, *, session_id: str | None = None, request_id: str | None = None
) -> tuple[int, str]:
    headers = {"content-type": "application/json"}
    if session_id:
        headers["x-claude-code-session-id"] = session_id
    if request_id:
        headers["x-request-id"] = request_id
    async with session.post(url + "/v1/messages", data=orjson.dumps(BODY), headers=headers) as response:
        await response.read()
        return response.status, response.headers.get("x-ccrouter-provider", "")


async def _breaker(session: aiohttp.ClientSession, url: str, provider: str) -> str:
    async with session.get(url + "/health/providers") as response:
        rows = (await response.json())["providers"]
    return next(str(row["breaker"]) for row in rows if row["provider"] == provider)


async def test_a_breaker_one_instance_opens_holds_for_all_until_one_probe(
    tmp_path: Path, fake_a: FakeUpstream, fake_b: FakeUpstream, switch_a: Switch
) -> None:
    switch_a.failing = True
    async with Cluster(tmp_path, _document(fake_a, fake_b)) as cluster, aiohttp.ClientSession() as session:
        # Instance 0 alone (not through nginx) meets A's failures until its breaker opens.
        first = cluster.gateway_url(0)
        for _ in range(3):
            assert await _post(session, first) == (200, "b")  # failed over
        assert await _breaker(session, first, "a") == "open"
        opened = len(switch_a.calls)
        # Every instance, through nginx: A gets at most 3 more calls until the half-open probe.
        served = []
        until = time.monotonic() + OPEN_S - 0.8
        while time.monotonic() < until:
            served.append(await _post(session, cluster.url))
        assert set(served) == {(200, "b")}
        assert len(served) > 20
        assert len(switch_a.calls) - opened <= 3
        before_probe = len(switch_a.calls)
        # The open period ends: exactly one probe reaches A from all three (it fails: open again).
        until = time.monotonic() + 1.6
        while time.monotonic() < until:
            assert await _post(session, cluster.url) == (200, "b")
        assert len(switch_a.calls) - before_probe == 1
        # A recovers: the next probe closes it, for every instance.
        switch_a.failing = False
        await asyncio.sleep(OPEN_S)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            await _post(session, cluster.url)
            states = [await _breaker(session, cluster.gateway_url(i), "a") for i in range(3)]
            if states == ["closed"] * 3:
                break
        else:
            pytest.fail(f"A's breaker did not close everywhere: {states}")
        assert {await _post(session, cluster.url) for _ in range(6)} == {(200, "a")}


async def test_a_sessions_turns_on_every_instance_stay_on_one_provider(
    tmp_path: Path, fake_a: FakeUpstream, fake_b: FakeUpstream
) -> None:
    async with Cluster(tmp_path, _document(fake_a, fake_b)) as cluster, aiohttp.ClientSession() as session:
        # Turn 1 on instance 0: A fails once, B serves, the session sticks to B.
        fake_a.script(Fault("status", status=500))
        assert await _post(session, cluster.gateway_url(0), session_id="s-1") == (200, "b")
        # Its next turns land on every instance (directly and through nginx): all on B, though A is
        # first in priority and healthy again.
        for url in [cluster.gateway_url(1), cluster.gateway_url(2), *[cluster.url] * 6]:
            assert await _post(session, url, session_id="s-1") == (200, "b")
        # Another session goes to A.
        assert await _post(session, cluster.url, session_id="s-2") == (200, "a")


async def test_a_block_budget_across_three_instances_is_not_overspent(
    tmp_path: Path, fake_a: FakeUpstream, fake_b: FakeUpstream
) -> None:
    # Input-only prices: a request's cost is known at admission (its worst case is its reservation).
    output = 5
    budget = {"name": "team", "period": "daily", "limit_usd": 0.01, "action": "block"}
    document = _document(fake_a, fake_b, budgets=[budget], prices={MODEL: {"input": 100, "output": 100}})
    async with Cluster(tmp_path, document) as cluster, aiohttp.ClientSession() as session:
        fake_a.script(*[Reply(text="ok", input_tokens=9, output_tokens=output) for _ in range(200)])
        results = await asyncio.gather(
            *(_post(session, cluster.url, request_id=f"budget-{i}") for i in range(60))
        )
        statuses = sorted(status for status, _ in results)
        assert 200 in statuses
        assert 403 in statuses
        assert set(statuses) == {200, 403}
        settings = load_settings(cluster.config)
        ledger = make_store(settings.store, tmp_path)
        await ledger.open()
        try:
            rows = [r for r in await ledger.records() if r.request_id.startswith("budget-")]
        finally:
            await ledger.close()
    costs = [(row.cost_picos or 0) / 1e12 for row in rows]
    assert sum(costs) <= 0.01 + max(costs)  # at most one request's worst case over the limit
    assert len([s for s in statuses if s == 200]) == len([r for r in rows if r.status == 200])


async def test_an_instance_killed_under_load_loses_no_completed_requests_row(
    tmp_path: Path, fake_a: FakeUpstream, fake_b: FakeUpstream
) -> None:
    async with Cluster(tmp_path, _document(fake_a, fake_b)) as cluster:
        done: list[str] = []
        failed: list[str] = []
        stop = asyncio.Event()

        async def load(worker: int) -> None:
            n = 0
            async with aiohttp.ClientSession() as session:
                while not stop.is_set():
                    n += 1
                    request_id = f"kill-{worker}-{n}"
                    try:
                        status, _ = await _post(session, cluster.url, request_id=request_id)
                    except aiohttp.ClientError:
                        failed.append(request_id)
                        continue
                    (done if status == 200 else failed).append(request_id)

        workers = [asyncio.create_task(load(i)) for i in range(12)]
        await asyncio.sleep(1.0)
        await cluster.kill(1)
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.gather(*workers)
        settings = load_settings(cluster.config)
        ledger = make_store(settings.store, tmp_path)
        await ledger.open()
        try:
            recorded = {r.request_id for r in await ledger.records()}
        finally:
            await ledger.close()
    assert len(done) > 50
    assert failed == []  # nginx sent what instance 1 could not take to another
    assert set(done) - recorded == set()


async def test_a_rolling_restart_under_100_streams_fails_or_cuts_none(
    tmp_path: Path, fake_a: FakeUpstream, fake_b: FakeUpstream
) -> None:
    body = claude_code_request()
    body.pop("stream", None)
    body["model"] = MODEL
    sdk_fields = {"model", "max_tokens", "system", "messages", "tools", "metadata", "thinking", "tool_choice"}
    arguments = {key: value for key, value in body.items() if key in sdk_fields}
    arguments["extra_body"] = {key: value for key, value in body.items() if key not in sdk_fields}
    fake_a.default = lambda record: Reply(text="x" * 40, chunk_size=1, chunk_delay=0.05)  # 2 s a stream
    async with Cluster(tmp_path, _document(fake_a, fake_b)) as cluster:
        outcomes: list[str] = []
        stop = asyncio.Event()

        async def client(worker: int) -> None:
            # As Claude Code does: the SDK retries a 529 (a draining instance) and connection errors.
            sdk = anthropic.AsyncAnthropic(base_url=cluster.url, api_key="k", max_retries=4)
            try:
                while not stop.is_set():
                    try:
                        async with sdk.messages.stream(**arguments) as stream:
                            text = "".join([piece async for piece in stream.text_stream])
                            final = await stream.get_final_message()
                        outcomes.append(
                            "ok" if text == "x" * 40 and final.stop_reason == "end_turn" else "cut"
                        )
                    except anthropic.APIError as exc:
                        outcomes.append(f"failed: {exc}")
            finally:
                await sdk.close()

        clients = [asyncio.create_task(client(i)) for i in range(100)]
        await asyncio.sleep(2.5)
        for index in range(3):
            assert await cluster.terminate(index) == 0
            await cluster.start(index)
            await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*clients)
    problems = [outcome for outcome in outcomes if outcome != "ok"]
    assert len(outcomes) >= 200
    assert problems == []


async def _until(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout_s:g}s: {what}")
        await asyncio.sleep(0.05)


async def test_alerts_keep_flowing_from_a_survivor_when_the_holder_is_killed(
    tmp_path: Path, fake_a: FakeUpstream, fake_b: FakeUpstream, switch_a: Switch
) -> None:
    receiver = Receiver()
    await receiver.server.start_server()
    alerts = {"webhook_url": receiver.url, "interval_s": 0.5}
    switch_a.failing = True
    try:
        async with Cluster(tmp_path, _document(fake_a, fake_b, alerts=alerts)) as cluster:
            async with aiohttp.ClientSession() as session:
                for _ in range(3):
                    assert await _post(session, cluster.gateway_url(0)) == (200, "b")
            await _until(lambda: "firing" in {s for _, s in receiver.transitions()}, 10, "A's alert firing")
            firing = [alert for alert, status in receiver.transitions() if status == "firing"]
            # The holder of the alerts' lease is SIGKILLed: a survivor takes the alerts over.
            client = redis.from_url(REDIS_URL, driver_info=DriverInfo(lib_version=redis_version))
            try:
                token = (await client.get(f"{cluster.prefix}:alerts:lease")).decode()
            finally:
                await client.aclose()
            pid = int(token.split(":")[1])
            holder = next(i for i, p in enumerate(cluster.processes) if p is not None and p.pid == pid)
            await cluster.kill(holder)
            # A recovers: its breaker closes (a probe through the survivors), the alert resolves once.
            switch_a.failing = False
            async with aiohttp.ClientSession() as session:
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline and (
                    "resolved" not in {s for _, s in receiver.transitions()}
                ):
                    await _post(session, cluster.url)
                    await asyncio.sleep(0.1)
            await asyncio.sleep(1.5)  # two more rounds: nothing sent twice
    finally:
        await receiver.server.close()
    transitions = receiver.transitions()
    for alert in firing:
        assert transitions.count((alert, "firing")) == 1, transitions
        assert transitions.count((alert, "resolved")) == 1, transitions
