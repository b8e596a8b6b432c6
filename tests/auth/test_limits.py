"""Client limits on their own: which windows a request counts in, the tightest limit on each, the
429's message and retry-after, tokens per minute, allow-lists, and composing admissions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from ccrouter.auth.limits import Admissions, ClientLimits
from ccrouter.auth.roles import Principal
from ccrouter.codecs.anthropic import codec
from ccrouter.config import Settings
from ccrouter.errors import ClientRateLimitError, PermissionDeniedError
from ccrouter.exchange import Exchange
from ccrouter.messages import MessagesRequest, Usage
from ccrouter.resilience.windows import MemoryWindows, RedisWindows, WindowStore

REQUEST: MessagesRequest = codec.decode_request(
    {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
)
ROUTE = "up,m"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _settings(limits: Sequence[dict[str, Any]] = ()) -> Settings:
    provider = {"name": "up", "type": "anthropic", "base_url": "http://127.0.0.1:9", "models": ["m"]}
    return Settings.model_validate(
        {"providers": [provider], "router": {"default": ROUTE}, "limits": list(limits)}
    )


def _exchange(
    key: str | None = "key_1",
    *,
    name: str | None = "alice",
    user: str | None = None,
    team: str | None = None,
    **own: Any,
) -> Exchange:
    principal = (
        None if key is None else Principal("key", key, "client", name=name, user=user, team=team, **own)
    )
    return Exchange("r", "messages", client_key_id=key, user=user, team=team, principal=principal)


@pytest.fixture(params=["memory", "redis"])
async def windows(
    request: pytest.FixtureRequest, redis_prefix: str, redis_url: str
) -> AsyncIterator[WindowStore]:
    store: WindowStore = (
        MemoryWindows() if request.param == "memory" else RedisWindows.connect(redis_url, redis_prefix)
    )
    try:
        yield store
    finally:
        await store.aclose()


async def _admitted(limits: ClientLimits, make: Callable[[], Exchange], n: int) -> int:
    ok = 0
    for _ in range(n):
        try:
            await limits.admit(make(), REQUEST, ROUTE)
            ok += 1
        except ClientRateLimitError:
            pass
    return ok


async def test_a_keys_own_rpm(windows: WindowStore) -> None:
    clock = Clock()
    limits = ClientLimits(_settings(), windows, clock=clock)
    assert await _admitted(limits, lambda: _exchange(rpm=3), 5) == 3
    with pytest.raises(ClientRateLimitError) as caught:
        await limits.admit(_exchange(rpm=3), REQUEST, ROUTE)
    assert caught.value.status == 429
    assert caught.value.error_type == "rate_limit_error"
    assert "key alice: 3 requests per minute" in caught.value.message
    assert 1 <= caught.value.retry_after <= 61
    # Another key has a window of its own; a minute later the first is free again.
    assert await _admitted(limits, lambda: _exchange("key_2", name="bob", rpm=3), 1) == 1
    clock.now += 61
    assert await _admitted(limits, lambda: _exchange(rpm=3), 1) == 1


async def test_tokens_per_minute_admit_while_below_the_limit(windows: WindowStore) -> None:
    clock = Clock()
    limits = ClientLimits(_settings(), windows, clock=clock)
    first = _exchange(tpm=100)
    await limits.admit(first, REQUEST, ROUTE)
    first.usage = Usage(input_tokens=60, output_tokens=39)
    await limits.settle(first)
    second = _exchange(tpm=100)
    await limits.admit(second, REQUEST, ROUTE)  # 99 of 100: still below
    second.usage = Usage(input_tokens=1, output_tokens=0)
    await limits.settle(second)
    with pytest.raises(ClientRateLimitError, match="key alice: 100 tokens per minute"):
        await limits.admit(_exchange(tpm=100), REQUEST, ROUTE)
    clock.now += 61
    await limits.admit(_exchange(tpm=100), REQUEST, ROUTE)


async def test_rules_by_user_and_team_and_the_tightest_wins(windows: WindowStore) -> None:
    rules = [
        {"name": "per-user", "scope": "user", "rpm": 2},
        {"name": "ml-team", "scope": "team", "match": "ml", "rpm": 3},
        {"name": "loose", "scope": "team", "rpm": 50},
    ]
    limits = ClientLimits(_settings(rules), windows, clock=Clock())
    # Two users of team ml: 2 each by the user rule, 3 together by the team rule.
    assert await _admitted(limits, lambda: _exchange(user="ann", team="ml"), 3) == 2
    with pytest.raises(ClientRateLimitError, match="user ann \\(rule per-user\\): 2 requests per minute"):
        await limits.admit(_exchange(user="ann", team="ml"), REQUEST, ROUTE)
    assert await _admitted(limits, lambda: _exchange("key_2", user="ben", team="ml"), 1) == 1
    with pytest.raises(ClientRateLimitError, match="team ml \\(rule ml-team\\): 3 requests per minute"):
        await limits.admit(_exchange("key_2", user="ben", team="ml"), REQUEST, ROUTE)
    # Another team only has the loose rule.
    assert await _admitted(limits, lambda: _exchange("key_3", user="cat", team="ops"), 2) == 2


async def test_a_refusal_counts_nothing_in_the_other_windows(windows: WindowStore) -> None:
    rules = [{"name": "team", "scope": "team", "rpm": 3}]
    limits = ClientLimits(_settings(rules), windows, clock=Clock())
    # alice (rpm 1) is refused twice; the team still has room for three of bob's requests.
    assert await _admitted(limits, lambda: _exchange(team="ml", rpm=1), 3) == 1
    assert await _admitted(limits, lambda: _exchange("key_2", name="bob", team="ml"), 3) == 2


async def test_a_key_rule_matches_name_or_id_and_calls_on_a_requests_behalf_are_free() -> None:
    rules = [{"name": "by-name", "scope": "key", "match": "alice", "rpm": 1}]
    limits = ClientLimits(_settings(rules), MemoryWindows(), clock=Clock())
    assert await _admitted(limits, _exchange, 2) == 1
    child = _exchange()
    child.parent_id = "r"
    await limits.admit(child, REQUEST, ROUTE)
    assert await _admitted(limits, lambda: _exchange("key_2", name="bob"), 2) == 2
    # No principal and no rules: nothing to count.
    assert await _admitted(ClientLimits(_settings(), MemoryWindows()), lambda: _exchange(None), 3) == 3


def test_allow_lists() -> None:
    rules = [{"name": "ml-models", "scope": "team", "match": "ml", "models": ["up,*", "gpt-x"]}]
    limits = ClientLimits(_settings(rules), MemoryWindows())
    assert limits.allowance(_exchange()) is None
    assert limits.allowance(_exchange(None)) is None
    allowance = limits.allowance(_exchange(team="ml", models=("up,m", "other,*", "bare")))
    assert allowance is not None
    assert allowance.allows("up,m")
    assert not allowance.allows("up,n")  # the team allows up,*, the key only up,m
    assert not allowance.allows("other,gpt-y")  # the key allows other,*, the team not
    assert allowance.allows("other,gpt-x")  # other,* and the bare gpt-x
    with pytest.raises(PermissionDeniedError) as caught:
        allowance.check("up,n")
    assert caught.value.message == "route up,n is not allowed for key alice (allowed: up,m, other,*, bare)"
    with pytest.raises(PermissionDeniedError, match="team ml \\(rule ml-models\\)"):
        allowance.check("other,gpt-y")


class Recorder:
    def __init__(self, name: str, log: list[str], *, refuse: bool = False, route: str | None = None) -> None:
        self.name, self.log, self.refuse, self.route = name, log, refuse, route

    async def admit(
        self,
        exchange: Exchange,
        request: MessagesRequest,
        route: str,
        alternatives: Callable[[], Sequence[tuple[str, int]]] | None = None,
    ) -> str | None:
        self.log.append(f"admit {self.name}")
        if self.refuse:
            raise PermissionDeniedError(f"{self.name} refuses")
        return self.route

    async def settle(self, exchange: Exchange) -> None:
        self.log.append(f"settle {self.name}")


async def test_admissions_in_order_and_settled_all() -> None:
    log: list[str] = []
    both = Admissions(
        (Recorder("a", log), Recorder("b", log, route="up,cheap"), Recorder("c", log, route="x,y"))
    )
    assert await both.admit(_exchange(), REQUEST, ROUTE) == "up,cheap"
    await both.settle(_exchange())
    assert log == ["admit a", "admit b", "admit c", "settle a", "settle b", "settle c"]
    log.clear()
    refusing = Admissions((Recorder("a", log), Recorder("b", log, refuse=True), Recorder("c", log)))
    with pytest.raises(PermissionDeniedError, match="b refuses"):
        await refusing.admit(_exchange(), REQUEST, ROUTE)
    assert log == ["admit a", "admit b", "settle a"]


async def test_concurrent_admissions_hold_the_limit(windows: WindowStore) -> None:
    rules = [{"name": "team", "scope": "team", "rpm": 50}]
    limits = ClientLimits(_settings(rules), windows, clock=Clock())

    async def one() -> bool:
        try:
            await limits.admit(_exchange(team="ml", rpm=7), REQUEST, ROUTE)
        except ClientRateLimitError:
            return False
        return True

    assert sum(await asyncio.gather(*(one() for _ in range(30)))) == 7
