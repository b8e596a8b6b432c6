"""Provider health is its own measure (outcomes, latency, breaker, cooldown), not the last routing
score: an explicit ``provider,model`` request leaves a healthy target healthy everywhere it shows."""

from __future__ import annotations

import aiohttp
import orjson
from gateway_support import GatewayFactory
from prometheus_client.parser import text_string_to_metric_families

from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream, Fault, Reply

MODEL = "claude-sonnet-4-6"


def _settings(fake: FakeUpstream) -> Settings:
    return Settings.model_validate(
        {
            "providers": [
                {
                    "name": "up",
                    "type": "anthropic",
                    "base_url": fake.url,
                    "api_key": "sk-up",
                    "models": [MODEL],
                },
            ],
            "router": {"default": f"up,{MODEL}"},
            "routing": {"auto_fallback": "off", "breaker": {"consecutive_failures": 2}},
        }
    )


async def _send(session: aiohttp.ClientSession, url: str, model: str) -> int:
    body = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    async with session.post(url + "/v1/messages", json=body) as response:
        await response.read()
        return response.status


async def _health(session: aiohttp.ClientSession, url: str) -> float:
    async with session.get(url + "/health/providers") as response:
        (row,) = orjson.loads(await response.read())["providers"]
    return float(row["health_score"])


async def _metric(session: aiohttp.ClientSession, url: str) -> float:
    async with session.get(url + "/metrics") as response:
        text = await response.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "ccr_provider_health_score" and sample.labels["provider"] == "up":
                return float(sample.value)
    raise AssertionError("ccr_provider_health_score for up is missing")


async def test_explicit_request_leaves_a_healthy_target_healthy(
    fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    url = await gateway(_settings(fake))
    fake.script(Reply(text="ok"), Reply(text="ok"))
    async with aiohttp.ClientSession() as session:
        assert await _send(session, url, f"up,{MODEL}") == 200
        assert await _health(session, url) == 1.0
        assert await _metric(session, url) == 1.0
        # The default route, scored by the intelligent strategy, does not change health either.
        assert await _send(session, url, MODEL) == 200
        assert await _health(session, url) == 1.0


async def test_failures_lower_health_and_an_open_breaker_is_zero(
    fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    url = await gateway(_settings(fake))
    fake.script(Reply(text="ok"), Fault("status", status=500), Fault("status", status=500))
    async with aiohttp.ClientSession() as session:
        assert await _send(session, url, MODEL) == 200
        assert await _send(session, url, MODEL) == 500
        # One success, one failure: half the outcomes went well.
        assert await _health(session, url) == 0.5
        assert await _send(session, url, MODEL) == 500
        assert await _health(session, url) == 0.0  # two failures in a row opened the breaker
        assert await _metric(session, url) == 0.0
