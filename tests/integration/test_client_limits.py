"""Per key, user and team limits through the real app: a key over its rpm or tpm gets a 429 with
retry-after in its own envelope, user and team rules, model allow-lists (a 403 naming the route,
fallbacks outside the list skipped), two instances sharing Redis holding one rpm together, and team
and managed key budgets that block."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from gateway_support import GatewayFactory

from ccrouter.codecs.anthropic import codec
from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream, Fault, Reply
from ccrouter.tokens import TokenCounter

REDIS_URL = "redis://127.0.0.1:6379/0"
ADMIN = "admin-token-for-limits-tests"
MODEL = "claude-sonnet-4-6"
BODY = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
KEYS = {name: f"{name}-client-key-0123456789" for name in ("alice", "bob", "carol", "dave")}


@pytest.fixture
def prefix(redis_prefix: str) -> str:
    return redis_prefix


def _settings(fake_url: str, tmp_path: Path, keys: list[dict[str, Any]], **extra: Any) -> Settings:
    return Settings.model_validate(
        {
            "server": {"api_keys": keys, "admin_token": ADMIN, **extra.pop("server", {})},
            "providers": [
                {
                    "name": "up",
                    "type": "anthropic",
                    "base_url": fake_url,
                    "api_key": "sk-up",
                    "models": [MODEL, "model-b", "model-c"],
                }
            ],
            "router": {"default": f"up,{MODEL}", **extra.pop("router", {})},
            "store": {"url": f"sqlite:///{tmp_path / 'usage.db'}", "flush_interval_s": 0.05},
            **extra,
        }
    )


def _key(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "key": KEYS[name], "user": name, **fields}


async def _send(url: str, key: str, *, chat: bool = False) -> tuple[int, dict[str, str], Any]:
    path, body = ("/v1/chat/completions", CHAT) if chat else ("/v1/messages", BODY)
    headers = {"authorization": f"Bearer {key}"} if chat else {"x-api-key": key}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + path, json=body, headers=headers) as response,
    ):
        return (
            response.status,
            {k.lower(): v for k, v in response.headers.items()},
            orjson.loads(await response.read()),
        )


async def test_over_its_rpm_a_key_gets_429_with_retry_after_in_both_envelopes(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    url = await gateway(_settings(fake.url, tmp_path, [_key("alice", rpm=2), _key("bob")]))
    assert [(await _send(url, KEYS["alice"]))[0] for _ in range(2)] == [200, 200]
    status, headers, body = await _send(url, KEYS["alice"])
    assert status == 429
    assert body["type"] == "error"
    assert body["error"]["type"] == "rate_limit_error"
    assert "key alice: 2 requests per minute" in body["error"]["message"]
    assert 1 <= int(headers["retry-after"]) <= 61
    status, headers, body = await _send(url, KEYS["alice"], chat=True)
    assert status == 429
    assert "type" not in body
    assert body["error"]["type"] == "rate_limit_exceeded"  # the OpenAI envelope's name
    assert "key alice: 2 requests per minute" in body["error"]["message"]
    assert 1 <= int(headers["retry-after"]) <= 61
    assert len(fake.requests) == 2  # refused requests never reached the provider
    assert (await _send(url, KEYS["bob"]))[0] == 200  # bob has no limit of his own


async def test_tokens_per_minute(fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path) -> None:
    url = await gateway(_settings(fake.url, tmp_path, [_key("alice", tpm=100)]))
    fake.script(
        Reply(text="ok", input_tokens=50, output_tokens=40), Reply(text="ok", input_tokens=5, output_tokens=5)
    )
    assert (await _send(url, KEYS["alice"]))[0] == 200  # 90 of 100
    assert (await _send(url, KEYS["alice"]))[0] == 200  # below the limit when admitted: 100 now
    status, headers, body = await _send(url, KEYS["alice"])
    assert status == 429
    assert "key alice: 100 tokens per minute" in body["error"]["message"]
    assert "retry-after" in headers


async def test_user_and_team_rules(fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path) -> None:
    keys = [
        _key("alice", team="ml"),
        _key("bob", team="ml"),
        _key("carol", team="web"),
        _key("dave", team="web"),
    ]
    rules = [
        {"name": "ml-team", "scope": "team", "match": "ml", "rpm": 3},
        {"name": "per-user", "scope": "user", "rpm": 2},
    ]
    url = await gateway(_settings(fake.url, tmp_path, keys, limits=rules))
    assert [(await _send(url, KEYS["alice"]))[0] for _ in range(3)] == [200, 200, 429]
    status, _, body = await _send(url, KEYS["bob"])
    assert status == 200  # the team's third
    status, _, body = await _send(url, KEYS["bob"])
    assert status == 429
    assert "team ml (rule ml-team): 3 requests per minute" in body["error"]["message"]
    # Team web has no team rule; each of its users has 2.
    assert [(await _send(url, KEYS["carol"]))[0] for _ in range(3)] == [200, 200, 429]
    assert [(await _send(url, KEYS["dave"]))[0] for _ in range(2)] == [200, 200]


async def test_allow_list_refuses_the_route_and_skips_fallbacks_outside_it(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    keys = [_key("alice", models=["model-b"]), _key("bob", models=[f"up,{MODEL}", "up,model-c"])]
    fallback = {"fallback": {"default": ["up,model-b", "up,model-c"]}}
    url = await gateway(_settings(fake.url, tmp_path, keys, router=fallback))
    status, _, body = await _send(url, KEYS["alice"])
    assert status == 403
    assert body["error"]["type"] == "permission_error"
    assert body["error"]["message"] == f"route up,{MODEL} is not allowed for key alice (allowed: model-b)"
    status, _, body = await _send(url, KEYS["alice"], chat=True)
    assert status == 403
    assert f"route up,{MODEL} is not allowed" in body["error"]["message"]
    assert fake.requests == []
    # bob's route fails; its fallback model-b is not his, model-c serves.
    fake.script(Fault("status", status=500))
    status, _, body = await _send(url, KEYS["bob"])
    assert status == 200, body
    assert [request.model for request in fake.requests] == [MODEL, "model-c"]


async def test_two_instances_hold_one_keys_rpm_together(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path, prefix: str
) -> None:
    state = {"redis_url": REDIS_URL, "key_prefix": prefix}
    config = _settings(fake.url, tmp_path, [_key("alice", rpm=7)], state=state)
    first, second = await gateway(config), await gateway(config)
    results = await asyncio.gather(*(_send(first if i % 2 else second, KEYS["alice"]) for i in range(24)))
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200] * 7 + [429] * 17
    assert len(fake.requests) == 7


def _tokens() -> int:
    return TokenCounter().count_request(codec.decode_request(dict(BODY)))


async def test_a_team_budget_blocks(fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path) -> None:
    tokens = _tokens()
    budget = {"name": "ml-daily", "scope": "team", "period": "daily", "limit_usd": 2.5 * tokens / 1e6}
    keys = [_key("alice", team="ml"), _key("bob", team="ml"), _key("carol", team="web")]
    url = await gateway(
        _settings(
            fake.url,
            tmp_path,
            keys,
            budgets=[budget],
            prices={f"up,{MODEL}": {"input": 1, "output": 0}},
        )
    )
    fake.script(*[Reply(text="ok", input_tokens=tokens, output_tokens=1) for _ in range(6)])
    statuses = [(await _send(url, KEYS[name]))[0] for name in ("alice", "bob", "alice")]
    assert statuses == [200, 200, 403]
    status, _, body = await _send(url, KEYS["bob"])
    assert status == 403
    assert "ml-daily" in body["error"]["message"]
    assert "team:ml" in body["error"]["message"]
    assert (await _send(url, KEYS["carol"]))[0] == 200  # another team


async def test_a_managed_keys_own_budget_blocks(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    tokens = _tokens()
    config = _settings(
        fake.url,
        tmp_path,
        [],
        server={"require_auth": True},
        prices={f"up,{MODEL}": {"input": 1, "output": 0}},
    )
    url = await gateway(config)
    admin = {"authorization": f"Bearer {ADMIN}"}
    async with aiohttp.ClientSession(headers=admin) as session:
        spec = {"name": "ana", "user": "ana", "budget_usd": 1.5 * tokens / 1e6, "budget_period": "daily"}
        async with session.post(url + "/api/keys", json=spec) as response:
            assert response.status == 201, await response.text()
            created = await response.json()
    secret, key_id = created["key"], created["id"]
    fake.script(*[Reply(text="ok", input_tokens=tokens, output_tokens=1) for _ in range(3)])
    assert (await _send(url, secret))[0] == 200
    status, _, body = await _send(url, secret)
    assert status == 403
    assert body["error"]["type"] == "permission_error"
    assert f"key:{key_id}" in body["error"]["message"]
    assert len(fake.requests) == 1
    # Its budget is listed with the others once its spend is in the ledger.
    needle = (
        f'ccr_budget_used_usd{{action="block",budget="key:{key_id}",period="daily",scope="key:{key_id}"}}'
    )
    async with aiohttp.ClientSession(headers=admin) as session:
        for _ in range(100):
            async with session.get(url + "/metrics") as response:
                text = await response.text()
            if needle in text:
                break
            await asyncio.sleep(0.05)
    assert needle in text, text


async def test_the_long_context_move_keeps_to_the_allow_list(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    """A context-window error moves a request to ``router.long_context``: not for a key whose list
    does not allow that route (it gets the upstream's 400), for any other key it does."""
    too_long = {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "prompt is too long: 250000 tokens > 200000 maximum",
        },
    }
    body = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
    async with FakeUpstream() as alt:
        document = {
            "server": {
                "api_keys": [
                    {"name": "narrow", "key": "secret-narrow-0123456789", "models": ["up,*"]},
                    {"name": "wide", "key": "secret-wide-0123456789"},
                ]
            },
            "providers": [
                {
                    "name": "up",
                    "type": "anthropic",
                    "base_url": fake.url,
                    "api_key": "sk-up-secret",
                    "models": ["claude-sonnet-4-6"],
                },
                {
                    "name": "alt",
                    "type": "anthropic",
                    "base_url": alt.url,
                    "api_key": "sk-alt-secret",
                    "models": ["claude-haiku-4-5"],
                },
            ],
            "router": {
                "default": "up,claude-sonnet-4-6",
                "long_context": "alt,claude-haiku-4-5",
                "long_context_threshold": 1_000_000,
            },
            "routing": {"auto_fallback": "off"},
            "store": {"url": f"sqlite:///{tmp_path / 'usage.db'}", "flush_interval_s": 0.05},
        }
        url = await gateway(Settings.model_validate(document))
        async with aiohttp.ClientSession() as session:
            for key, expected in (("narrow", (400, None)), ("wide", (200, "alt"))):
                fake.script(Fault("status", status=400, body=orjson.dumps(too_long)))
                headers = {"authorization": f"Bearer secret-{key}-0123456789"}
                async with session.post(url + "/v1/messages", json=body, headers=headers) as response:
                    await response.read()
                    assert (response.status, response.headers.get("x-ccrouter-provider")) == expected, key
    assert len(alt.requests) == 1
