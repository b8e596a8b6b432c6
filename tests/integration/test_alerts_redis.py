"""Alerts once across instances (``ccrouter.telemetry.alert_state``), through the real local Redis and
a webhook receiver on loopback: one webhook per transition from two instances, a takeover within one
interval when the holder stops or dies, resolved sent once, and the outage rule with a Redis server
of our own that the test stops and starts again."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as redis
from process_support import free_port
from redis import __version__ as redis_version
from redis.driver_info import DriverInfo
from webhook_support import Receiver

from ccrouter.config import AlertsConfig
from ccrouter.status import ProviderStatus
from ccrouter.telemetry.alert_state import RedisAlertState
from ccrouter.telemetry.alerts import Alerter, RecentRequests, WebhookSender
from ccrouter.telemetry.redact import Redactor

REDIS_URL = "redis://127.0.0.1:6379/0"
INTERVAL_S = 0.4
# Scheduling slack on a busy 2-core machine, on top of the one interval the takeover may take.
SLACK_S = 0.3


def _client(url: str) -> redis.Redis:
    # Told its version, redis-py does not scan the package metadata on the loop to connect.
    return redis.from_url(url, driver_info=DriverInfo(lib_version=redis_version))


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    await recv.server.start_server()
    yield recv
    await recv.server.close()


@pytest.fixture
def prefix(redis_prefix: str) -> str:
    return redis_prefix


class Providers:
    """The provider status every instance sees (shared state would make them agree)."""

    def __init__(self) -> None:
        self.healthy = True

    def provider_statuses(self) -> list[ProviderStatus]:
        if self.healthy:
            return [ProviderStatus("up", "m", "closed", headroom=1.0, health_score=1.0)]
        return [ProviderStatus("up", "m", "open", headroom=1.0, health_score=0.0)]


class Instance:
    """One gateway's alerting: its own Redis client, lease token, webhook sender and loop."""

    def __init__(self, url: str, prefix: str, providers: Providers, receiver: Receiver) -> None:
        self.state = RedisAlertState.connect(url, prefix)
        self.sender = WebhookSender(receiver.url, 2.0, Redactor([]))
        config = AlertsConfig(interval_s=INTERVAL_S)
        self.alerter = Alerter(
            config, RecentRequests(60.0), [providers], senders=[self.sender], state=self.state
        )
        self.task: asyncio.Task[None] = asyncio.create_task(self.alerter.run())

    async def stop(self, *, release: bool) -> None:
        """A clean shutdown (``release``) or a death: the loop ends, the lease is left to expire."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        if release:
            await self.state.release()
        await self.state.aclose()
        await self.sender.aclose()


@pytest.fixture
async def instances() -> AsyncIterator[list[Instance]]:
    started: list[Instance] = []
    yield started
    for instance in started:
        if not instance.task.done():
            await instance.stop(release=True)


async def _holder(pair: list[Instance], timeout_s: float = 5.0) -> Instance:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        holders = [i for i in pair if i.state.holding]
        if holders:
            assert len(holders) == 1
            return holders[0]
        await asyncio.sleep(0.02)
    pytest.fail("no instance took the alert lease")


async def _taken_over(survivor: Instance) -> float:
    started = time.monotonic()
    while not survivor.state.holding:
        if time.monotonic() - started > 5 * INTERVAL_S:
            pytest.fail("the survivor did not take the alert lease over")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def test_two_instances_send_one_webhook_per_transition(
    prefix: str, receiver: Receiver, instances: list[Instance]
) -> None:
    providers = Providers()
    instances += [Instance(REDIS_URL, prefix, providers, receiver) for _ in range(2)]
    await _holder(instances)
    providers.healthy = False
    await receiver.wait_for(1)
    await asyncio.sleep(3 * INTERVAL_S)  # every instance had rounds enough to send a copy
    providers.healthy = True
    await receiver.wait_for(2)
    await asyncio.sleep(3 * INTERVAL_S)
    assert receiver.transitions() == [("ProviderUnhealthy", "firing"), ("ProviderUnhealthy", "resolved")]
    firing, resolved = receiver.bodies
    assert resolved["started_at"] == firing["started_at"]


@pytest.mark.parametrize("release", [True, False], ids=["stopped", "died"])
async def test_the_other_instance_takes_over_within_one_interval(
    prefix: str, receiver: Receiver, instances: list[Instance], release: bool
) -> None:
    providers = Providers()
    instances += [Instance(REDIS_URL, prefix, providers, receiver) for _ in range(2)]
    holder = await _holder(instances)
    (survivor,) = [i for i in instances if i is not holder]
    providers.healthy = False
    await receiver.wait_for(1)
    await holder.stop(release=release)
    took = await _taken_over(survivor)
    assert took <= INTERVAL_S + SLACK_S
    # The survivor sees the alert still holding and knows it is announced: no second "firing".
    await asyncio.sleep(3 * INTERVAL_S)
    assert receiver.transitions() == [("ProviderUnhealthy", "firing")]
    providers.healthy = True
    await receiver.wait_for(2)
    await asyncio.sleep(3 * INTERVAL_S)
    assert receiver.transitions() == [("ProviderUnhealthy", "firing"), ("ProviderUnhealthy", "resolved")]
    assert receiver.bodies[1]["started_at"] == receiver.bodies[0]["started_at"]


async def test_a_new_holder_resolves_what_resolved_while_no_one_held(
    prefix: str, receiver: Receiver, instances: list[Instance]
) -> None:
    """The alert stops holding between the holder's death and the takeover: resolved, once."""
    providers = Providers()
    first = Instance(REDIS_URL, prefix, providers, receiver)
    instances.append(first)
    await _holder([first])
    providers.healthy = False
    await receiver.wait_for(1)
    await first.stop(release=False)
    providers.healthy = True
    second = Instance(REDIS_URL, prefix, providers, receiver)
    instances.append(second)
    await receiver.wait_for(2)
    await asyncio.sleep(3 * INTERVAL_S)
    assert receiver.transitions() == [("ProviderUnhealthy", "firing"), ("ProviderUnhealthy", "resolved")]


# ------------------------------------------------------------------ the outage rule, on our own Redis


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


class OwnRedis:
    """A redis-server of the test's own on a free port, that the test can stop and start again."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            time.sleep(0.02)
        pytest.fail("the test's redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


async def test_the_holder_keeps_sending_through_a_redis_outage(
    own_redis: OwnRedis, receiver: Receiver, instances: list[Instance]
) -> None:
    providers = Providers()
    instances += [Instance(own_redis.url, "outage", providers, receiver) for _ in range(2)]
    holder = await _holder(instances)
    (other,) = [i for i in instances if i is not holder]
    await asyncio.to_thread(own_redis.stop)
    await asyncio.sleep(2 * INTERVAL_S)
    # No silence: the holder still announces; no storm: the other instance does not.
    providers.healthy = False
    await receiver.wait_for(1)
    await asyncio.sleep(3 * INTERVAL_S)
    assert receiver.transitions() == [("ProviderUnhealthy", "firing")]
    assert holder.state.holding
    assert not other.state.holding
    # Redis is back, empty (it kept nothing): the holder takes the lease again before the other
    # instance competes, and writes back what it announced meanwhile; so the alert resolves once
    # and does not fire again.
    await asyncio.to_thread(own_redis.start)
    client = _client(own_redis.url)
    try:
        deadline = time.monotonic() + 5
        while await client.hlen("outage:alerts:firing") == 0:
            assert time.monotonic() < deadline, "the holder did not write its firing state back"
            await asyncio.sleep(0.05)
        assert await client.get("outage:alerts:lease") == holder.state.token.encode()
        providers.healthy = True
        await receiver.wait_for(2)
        await asyncio.sleep(3 * INTERVAL_S)
        assert receiver.transitions() == [("ProviderUnhealthy", "firing"), ("ProviderUnhealthy", "resolved")]
        assert await client.hlen("outage:alerts:firing") == 0
    finally:
        await client.aclose()
