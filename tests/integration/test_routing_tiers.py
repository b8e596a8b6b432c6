"""The route comes first, then the fallback list, then automatic candidates: strategies rank within
each of those tiers, and a ready route is passed over only for a reason the explanation states."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from gateway_support import GatewayFactory

from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream, Fault, Reply

MODEL = "claude-sonnet-4-6"
BODY = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def fakes() -> AsyncIterator[list[FakeUpstream]]:
    upstreams = [FakeUpstream(rate_limit_headers=False) for _ in range(3)]
    for upstream in upstreams:
        await upstream.start()
    yield upstreams
    for upstream in upstreams:
        await upstream.stop()


def _settings(
    fakes: list[FakeUpstream], models: tuple[str, str, str] = (MODEL, MODEL, MODEL), **extra: Any
) -> Settings:
    names = ["a", "b", "c"]
    providers = [
        {"name": name, "type": "anthropic", "base_url": fake.url, "api_key": f"sk-{name}", "models": [model]}
        for name, fake, model in zip(names, fakes, models, strict=True)
    ]
    routing = {"auto_fallback": "off", **extra.pop("routing", {})}
    return Settings.model_validate(
        {
            "providers": providers,
            "router": {
                "default": f"a,{MODEL}",
                "fallback": {"default": [f"b,{models[1]}", f"c,{models[2]}"]},
            },
            "routing": routing,
            **extra,
        }
    )


async def _send(session: aiohttp.ClientSession, url: str) -> tuple[str, str]:
    """(who served, the route reason) for one request that must succeed."""
    async with session.post(url + "/v1/messages", data=orjson.dumps(BODY)) as response:
        await response.read()
        assert response.status == 200
        return response.headers["x-ccrouter-provider"], response.headers["x-ccrouter-route-reason"]


async def test_a_cheaper_or_unpriced_fallback_does_not_serve_ahead_of_a_healthy_route(
    fakes: list[FakeUpstream], gateway: GatewayFactory
) -> None:
    # b is a hundred times cheaper; c's model has no known price (the cost factor's neutral 0.5).
    prices = {"prices": {f"b,{MODEL}": {"input": 0.03, "output": 0.15}}}
    url = await gateway(_settings(fakes, (MODEL, MODEL, "unpriced-model"), **prices))
    async with aiohttp.ClientSession() as session:
        served = [(await _send(session, url))[0] for _ in range(6)]
    assert served == ["a"] * 6
    assert len(fakes[1].requests) == len(fakes[2].requests) == 0


async def test_a_slow_call_and_a_rate_limit_do_not_move_traffic_off_the_route_for_good(
    fakes: list[FakeUpstream], gateway: GatewayFactory
) -> None:
    a, b, _ = fakes
    # a's first call is slow (a cold start), its second a 429; b answers fast meanwhile.
    a.script(
        Fault("slow_first_byte", delay=0.3, reply=Reply(text="slow")),
        Fault("status", status=429, retry_after=1),
    )
    url = await gateway(_settings(fakes, routing={"recovery_s": 0}))
    async with aiohttp.ClientSession() as session:
        assert (await _send(session, url))[0] == "a"
        served, reason = await _send(session, url)  # a's 429: b serves
        assert served == "b"
        assert "a,claude-sonnet-4-6=rate_limit_error/429" in reason
        served, reason = await _send(session, url)  # a cools down: passed over, and the reason says so
        assert served == "b"
        assert "cooling down" in reason
        await asyncio.sleep(1.1)
        # The cooldown is over: traffic returns to the route, slower than b or not.
        served_after = [(await _send(session, url))[0] for _ in range(5)]
    assert served_after == ["a"] * 5
    assert len(b.requests) == 2


async def test_a_route_near_its_limit_yields_to_the_fallback_and_says_why(
    fakes: list[FakeUpstream], gateway: GatewayFactory
) -> None:
    settings = _settings(fakes)
    data = settings.model_dump(mode="json")
    data["providers"][0]["rpm"] = 5
    url = await gateway(Settings.model_validate(data))
    async with aiohttp.ClientSession() as session:
        answers = [await _send(session, url) for _ in range(6)]
    # 4 of 5 is the 80% headroom threshold: from then on a is held back, b serves.
    assert [who for who, _ in answers] == ["a"] * 4 + ["b"] * 2
    assert "at 80% of its limit" in answers[4][1]
    assert "route a,claude-sonnet-4-6 passed over" in answers[4][1]
