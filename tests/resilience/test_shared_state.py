"""The Redis-backed live-state stores (``resilience.shared``, ``resilience.synced``) against the real local
Redis, and the pure pieces they build on (``stats.merge``, ``CircuitBreaker.apply``, ``Outage``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from ccrouter.config import BreakerConfig, Settings
from ccrouter.errors import UpstreamOverloadedError
from ccrouter.messages import Usage
from ccrouter.resilience.breaker import CircuitBreaker
from ccrouter.resilience.live import LiveState
from ccrouter.resilience.outage import Outage
from ccrouter.resilience.ratelimits import AnnouncedLimits, ConfiguredLimits
from ccrouter.resilience.shared import SharedLive
from ccrouter.resilience.stats import TargetStats, merge, snapshot
from ccrouter.resilience.synced import SyncedWindows
from ccrouter.resilience.windows import RedisWindows
from ccrouter.routing.session import SessionUsage

REDIS_URL = "redis://127.0.0.1:6379/0"
MODEL = "m"


@pytest.fixture
def prefix(redis_prefix: str) -> str:
    return redis_prefix


def _synced(prefix: str) -> SyncedWindows:
    return SyncedWindows(RedisWindows.connect(REDIS_URL, prefix, Outage("test")))


SETTINGS = Settings.model_validate(
    {
        "providers": [{"name": "a", "type": "anthropic", "api_key": "sk-a", "models": [MODEL]}],
        "router": {"default": f"a,{MODEL}"},
        "routing": {"breaker": {"consecutive_failures": 2, "open_s": 30}},
    }
)


class _Instance:
    def __init__(self, prefix: str) -> None:
        self.windows = _synced(prefix)
        self.shared = SharedLive(self.windows, prefix)
        self.live = LiveState(SETTINGS, self.windows, shared=self.shared)
        self.sessions = SessionUsage()
        self.shared.attach(self.live, self.sessions)

    async def aclose(self) -> None:
        await self.shared.aclose()
        await self.windows.aclose()


@pytest.fixture
async def two(prefix: str) -> AsyncIterator[tuple[_Instance, _Instance]]:
    first, second = _Instance(prefix), _Instance(prefix)
    yield first, second
    await first.aclose()
    await second.aclose()


# ---------------------------------------------------------------- pure pieces


def test_merge_sums_outcomes_weights_averages_and_takes_the_latest_announcement() -> None:
    one, two = TargetStats(), TargetStats()
    for _ in range(3):
        one.record(100.0, "ok", 1.0)
    two.record(100.0, "ok", 4.0)
    two.record(100.0, "5xx", None)
    one.set_announced(AnnouncedLimits(requests_limit=10, requests_remaining=5), 90.0)
    two.set_announced(AnnouncedLimits(requests_limit=10, requests_remaining=1), 95.0)
    entries = [snapshot(one, 100.0), snapshot(two, 100.0)]
    assert None not in entries
    merged = merge([e for e in entries if e is not None], 100.0)
    # Weighted by successful calls: (3 * 1.0 + 1 * 4.0) / 4.
    assert merged.latency_s == pytest.approx(1.75)
    assert merged.totals[0] == 4
    assert sum(merged.totals) == 5
    assert merged.announced == AnnouncedLimits(requests_limit=10, requests_remaining=1)
    # The same on every instance, whatever order the snapshots come in.
    assert merge([e for e in reversed(entries) if e is not None], 100.0) == merged
    # A latency sampled too long ago is left out.
    assert merge([e for e in entries if e is not None], 100.0 + 301).latency_s is None
    # Read through the stats: merged figures replace the instance's own.
    one.merged = merged
    assert one.success_rate() == pytest.approx(0.8)
    assert one.recent(100.0) == (pytest.approx(1.75), None)
    assert one.current_announced() == merged.announced


def test_a_breaker_takes_only_newer_transitions() -> None:
    now = [100.0]
    breaker = CircuitBreaker(BreakerConfig(open_s=10), lambda: now[0])
    assert breaker.apply("open", 100.0, "elsewhere")
    assert (breaker.state, breaker.opened_at, breaker.reason) == ("open", 100.0, "elsewhere")
    assert not breaker.apply("closed", 99.0, "")  # older than the open
    now[0] = 111.0
    assert breaker.state == "half_open"  # by the shared opening time
    assert breaker.apply("closed", 111.0, "")
    assert breaker.state == "closed"


def test_an_outage_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ccrouter.resilience")
    outage = Outage("testing alone")
    for _ in range(5):
        outage.failed(ConnectionError("refused at redis://user:secret@host"))
    assert not outage.up
    assert outage.answered()
    assert not outage.answered()
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "Redis unreachable (ConnectionError); testing alone until it is back",
        "Redis is back: testing alone no more",
    ]


# ---------------------------------------------------------------- against Redis


async def test_synced_windows_count_locally_until_the_sync(prefix: str) -> None:
    first, second = _synced(prefix), _synced(prefix)
    try:
        unlimited = ConfiguredLimits()
        for i in range(3):
            assert await first.reserve("a/m/k0", unlimited, 1000.0 + i)
        await first.add_tokens("a/m/k0", 50, 1002.0)
        # Counted here at once, not yet in Redis.
        (mine,) = await first.usage(["a/m/k0"], 1002.0)
        (theirs,) = await second.usage(["a/m/k0"], 1002.0)
        assert (mine.requests_minute, mine.tokens_minute, theirs.requests_minute) == (3, 50, 0)
        await first.sync(1002.0)
        await second.sync(1002.0)
        (theirs,) = await second.usage(["a/m/k0"], 1002.0)
        assert (theirs.requests_minute, theirs.tokens_minute, theirs.requests_day) == (3, 50, 3)
        # A configured limit is checked in Redis at once, across both.
        limited = ConfiguredLimits(rpm=4)
        granted = [await w.reserve("a/m/k1", limited, 1003.0) for w in (first, second) * 3]
        assert sum(granted) == 4
        # A cooldown is noted where it was set, and where it is announced.
        await first.set_cooldown("a/m/k0", 1100.0)
        second.note_cooldown("a/m/k0", 1100.0)
        for windows in (first, second):
            assert (await windows.usage(["a/m/k0"], 1003.0))[0].cooldown_until == 1100.0
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_breaker_opened_on_one_instance_opens_on_the_other_at_its_next_sync(
    two: tuple[_Instance, _Instance],
) -> None:
    first, second = two
    for _ in range(2):
        assert await first.live.acquire("a", MODEL, "k0") is None
        await first.live.on_failure("a", MODEL, "k0", UpstreamOverloadedError("busy"), 0.1)
    assert first.live.breaker("a", MODEL).state == "open"
    await asyncio.gather(*first.shared._writes)  # the transition's write (in the background)
    assert second.live.breaker("a", MODEL).state == "closed"
    await second.shared.sync()
    breaker = second.live.breaker("a", MODEL)
    assert breaker.state == "open"
    assert breaker.opened_at == first.live.breaker("a", MODEL).opened_at
    refusal = await second.live.acquire("a", MODEL, "k0")
    assert refusal is not None
    assert "breaker open" in refusal.reason


async def test_one_probe_lease_per_open_period(two: tuple[_Instance, _Instance]) -> None:
    first, second = two
    assert await first.shared.take_probe("a/m", 100.0)
    assert await first.shared.take_probe("a/m", 100.0)  # its holder keeps it
    assert not await second.shared.take_probe("a/m", 100.0)
    # The next open period has a lease of its own.
    assert await second.shared.take_probe("a/m", 130.0)
    assert not await first.shared.take_probe("a/m", 130.0)
    assert await first.shared.lease("health-checks", 5.0)
    assert not await second.shared.lease("health-checks", 5.0)


async def test_merged_statistics_reach_every_instance(two: tuple[_Instance, _Instance]) -> None:
    first, second = two
    cred = first.live.credentials("a")[0]  # the id LiveState gives the key: position and hash
    await first.live.on_success("a", MODEL, cred, 2.0, Usage(input_tokens=1, output_tokens=1))
    await second.live.on_success("a", MODEL, cred, 4.0, Usage(input_tokens=1, output_tokens=1))
    for _ in range(2):  # a snapshot is written every other tick
        await first.shared.sync()
        await second.shared.sync()
    await first.shared.sync()
    (one,), (two_,) = first.live.provider_statuses(), second.live.provider_statuses()
    assert one.latency_ewma_s == two_.latency_ewma_s == pytest.approx(3.0)
    assert first.live.detail("a", MODEL)["outcomes_5m"] == {"ok": 2}


async def test_sessions_are_written_announced_and_read_once(two: tuple[_Instance, _Instance]) -> None:
    first, second = two
    first.sessions.remember("s1", "a,m")
    first.sessions.record("s1", Usage(input_tokens=1200, output_tokens=5))
    await first.shared._flush_sessions()
    # An instance that missed the announcement reads the session when it first sees it.
    await second.sessions.load("s1")
    assert (second.sessions.route("s1"), second.sessions.last_input("s1")) == ("a,m", 1200)
    # An announcement from another instance updates the cache; one's own is ignored.
    second.shared.on_message(b"other|s|" + b'{"s1": {"r": "b,m", "i": 99}}')
    second.shared.on_message(second.shared.tag.encode() + b'|s|{"s1": {"r": "c,m"}}')
    assert (second.sessions.route("s1"), second.sessions.last_input("s1")) == ("b,m", 99)


async def test_unreachable_redis_leaves_each_instance_its_own_state(caplog: pytest.LogCaptureFixture) -> None:
    windows = SyncedWindows(RedisWindows.connect("redis://127.0.0.1:1/0", "down", Outage("alone")))
    shared = SharedLive(windows, "down")
    live = LiveState(SETTINGS, windows, shared=shared)
    sessions = SessionUsage()
    shared.attach(live, sessions)
    try:
        await shared.sync()
        assert not shared.up
        assert await live.acquire("a", MODEL, "k0") is None
        await live.on_success("a", MODEL, "k0", 1.0, Usage(input_tokens=1, output_tokens=1))
        assert await shared.take_probe("a/m", 1.0)  # alone, this instance decides
        assert await shared.fetch_session("s") is None
        sessions.remember("s", "a,m")
        (usage,) = await windows.usage([f"a/{MODEL}/k0"], live.clock())
        assert usage.requests_minute == 1
    finally:
        await shared.aclose()
        await windows.aclose()
    assert len([r for r in caplog.records if "Redis unreachable" in r.getMessage()]) == 1
