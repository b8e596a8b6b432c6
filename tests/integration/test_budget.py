"""Budgets through the gateway: block across two instances sharing PostgreSQL, downgrade, warn."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest
from gateway_support import GatewayFactory

from ccrouter.codecs.anthropic import codec
from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream, Fault, Reply
from ccrouter.tokens import TokenCounter

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
BODY = {"model": "claude-sonnet-4-6", "max_tokens": 100, "messages": [{"role": "user", "content": "hello"}]}
KEY = "client-key-1"


@pytest.fixture
async def pg_schema() -> AsyncIterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        conn = await asyncpg.connect(PG_URL)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL is needed at {PG_URL} ({exc}); start it: `service postgresql start` "
            "(trust auth, user postgres, database test)"
        )
    try:
        yield schema
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


def counted_tokens() -> int:
    """What the gateway counts for BODY: replies report exactly this, so the reservation made at
    admission (input tokens at the input price) equals the cost billed."""
    return TokenCounter().count_request(codec.decode_request(dict(BODY)))


def settings(fake_url: str, store: dict[str, Any], budgets: list[dict[str, Any]]) -> Settings:
    return Settings.model_validate(
        {
            "server": {"api_keys": [{"name": "k1", "key": KEY, "user": "carol"}]},
            "providers": [
                {
                    "name": "up",
                    "type": "anthropic",
                    "base_url": fake_url,
                    "api_key": "sk-up",
                    "models": ["claude-sonnet-4-6", "cheap-model"],
                }
            ],
            "router": {"default": "up,claude-sonnet-4-6"},
            "store": {"flush_interval_s": 0.05, **store},
            # Input-only prices: the cost of a request is known at admission.
            "prices": {
                "up,claude-sonnet-4-6": {"input": 1, "output": 0},
                "cheap-model": {"input": 0, "output": 0},
            },
            "budgets": budgets,
        }
    )


async def send(url: str) -> tuple[int, dict[str, str], Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/v1/messages", json=BODY, headers={"x-api-key": KEY}) as response,
    ):
        return response.status, dict(response.headers), orjson.loads(await response.read())


async def test_block_across_two_instances(
    pg_schema: str, fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    tokens = counted_tokens()
    limit = 3.5 * tokens / 1e6  # room for three requests, not four
    budget = {"name": "team-daily", "period": "daily", "limit_usd": limit, "action": "block"}
    config = settings(fake.url, {"url": PG_URL, "schema_name": pg_schema}, [budget])
    first, second = await gateway(config), await gateway(config)
    fake.script(*[Reply(text="ok", input_tokens=tokens, output_tokens=3) for _ in range(10)])
    statuses = []
    for url in (first, second, first, second, first):
        status, _, body = await send(url)
        statuses.append(status)
    assert statuses == [200, 200, 200, 403, 403]
    assert body["error"]["type"] == "permission_error"
    assert "team-daily" in body["error"]["message"]
    assert "resets at" in body["error"]["message"]
    assert fake.pending == 7  # blocked requests never reached the provider


async def test_concurrent_requests_on_two_instances_cannot_overspend(
    pg_schema: str, fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    tokens = counted_tokens()
    budget = {"name": "k1-daily", "scope": "key", "period": "daily", "limit_usd": 3.5 * tokens / 1e6}
    config = settings(fake.url, {"url": PG_URL, "schema_name": pg_schema}, [budget])
    first, second = await gateway(config), await gateway(config)
    fake.script(*[Reply(text="ok", input_tokens=tokens, output_tokens=3, chunk_delay=0.0) for _ in range(12)])
    results = await asyncio.gather(*(send(first if i % 2 else second) for i in range(12)))
    assert sorted(status for status, _, _ in results) == [200] * 3 + [403] * 9


async def test_downgrade_and_warn(tmp_path: Path, fake: FakeUpstream, gateway: GatewayFactory) -> None:
    tokens = counted_tokens()
    budgets = [
        {
            "name": "soft",
            "scope": "user",
            "match": "carol",
            "period": "monthly",
            "limit_usd": 1.5 * tokens / 1e6,
            "action": "warn",
        },
        {
            "name": "cheap-after-two",
            "period": "weekly",
            "limit_usd": 2.5 * tokens / 1e6,
            "action": "downgrade",
            "downgrade_to": "up,cheap-model",
        },
    ]
    url = await gateway(settings(fake.url, {"url": f"sqlite:///{tmp_path / 'l.db'}"}, budgets))
    fake.script(*[Reply(text="ok", input_tokens=tokens, output_tokens=3) for _ in range(4)])
    answers = [await send(url) for _ in range(4)]
    assert [status for status, _, _ in answers] == [200] * 4
    models = [headers["x-ccrouter-model"] for _, headers, _ in answers]
    assert models == ["claude-sonnet-4-6", "claude-sonnet-4-6", "cheap-model", "cheap-model"]
    warnings = [headers.get("x-ccrouter-budget-warning") for _, headers, _ in answers]
    assert warnings[0] is None
    assert str(warnings[1]).startswith("soft:")
    assert "downgraded to up,cheap-model" in str(warnings[2])


def priced_settings(fake_url: str, pg_schema: str, limit_usd: float, max_output_tokens: int) -> Settings:
    """Real output prices ($3 in, $15 out per million, as Sonnet's), one PostgreSQL ledger."""
    return Settings.model_validate(
        {
            "server": {"api_keys": [{"name": "k1", "key": KEY, "user": "carol"}]},
            "providers": [
                {
                    "name": "up",
                    "type": "anthropic",
                    "base_url": fake_url,
                    "api_key": "sk-up",
                    "models": [{"name": "claude-sonnet-4-6", "max_output_tokens": max_output_tokens}],
                }
            ],
            "router": {"default": "up,claude-sonnet-4-6"},
            "routing": {"auto_fallback": "off"},
            "store": {"flush_interval_s": 0.05, "url": PG_URL, "schema_name": pg_schema},
            "prices": {"up,claude-sonnet-4-6": {"input": 3, "output": 15}},
            "budgets": [{"name": "block", "period": "daily", "limit_usd": limit_usd, "action": "block"}],
        }
    )


async def send_body(url: str, body: dict[str, Any]) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/v1/messages", json=body, headers={"x-api-key": KEY}) as response,
    ):
        await response.read()
        return response.status


async def spent_usd(pg_schema: str) -> tuple[int, float]:
    conn = await asyncpg.connect(PG_URL)
    try:
        rows, picos = await conn.fetchrow(
            f'SELECT COUNT(*), COALESCE(SUM(cost_picos), 0) FROM "{pg_schema}".usage WHERE status = 200'
        )
        reserved = await conn.fetchval(f'SELECT COUNT(*) FROM "{pg_schema}".budget_reservations')
    finally:
        await conn.close()
    assert reserved == 0  # every reservation was settled by its ledger row
    return int(rows), int(picos) / 1e12


async def test_concurrent_priced_output_stays_within_the_block_budget(
    pg_schema: str, fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    # Each request may write 4,000 tokens ($0.06 at $15/M) and writes 2,000 ($0.03): input-only
    # reservations let all 30 through ($0.90 against $0.50).
    limit = 0.50
    config = priced_settings(fake.url, pg_schema, limit, max_output_tokens=64_000)
    first, second = await gateway(config), await gateway(config)
    fake.script(*[Reply(text="ok", input_tokens=10, output_tokens=2000, chunk_delay=0.01) for _ in range(30)])
    body = {**BODY, "max_tokens": 4000, "stream": True}
    statuses = await asyncio.gather(*(send_body(first if i % 2 else second, body) for i in range(30)))
    await asyncio.sleep(0.3)  # both ledgers flush
    served, spent = await spent_usd(pg_schema)
    assert served == statuses.count(200) >= 8  # eight worst cases fit at once
    assert statuses.count(403) == 30 - served
    one_request = 10 * 3e-6 + 2000 * 15e-6
    assert spent <= limit + one_request


async def test_the_reservation_is_clamped_to_the_models_output_limit(
    pg_schema: str, fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    # max_tokens 100,000 at $15/M would be $1.50; clamped to the model's 1,000 it is $0.015.
    config = priced_settings(fake.url, pg_schema, 0.05, max_output_tokens=1000)
    url = await gateway(config)
    fake.script(*[Reply(text="ok", input_tokens=10, output_tokens=1000) for _ in range(4)])
    statuses = [await send_body(url, {**BODY, "max_tokens": 100_000}) for _ in range(4)]
    # $0.05 holds three settled $0.015 requests; a fourth worst case would cross it.
    assert statuses == [200, 200, 200, 403]


async def test_a_failed_request_releases_its_reservation(
    pg_schema: str, fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    # Room for one worst case ($0.015) only: the failed call must give it back.
    url = await gateway(priced_settings(fake.url, pg_schema, 0.02, max_output_tokens=1000))
    fake.script(Fault("status", status=500), Reply(text="ok", input_tokens=10, output_tokens=1000))
    statuses = [await send_body(url, {**BODY, "max_tokens": 1000}) for _ in range(3)]
    assert statuses == [500, 200, 403]
    await asyncio.sleep(0.2)
    assert await spent_usd(pg_schema) == (1, pytest.approx(10 * 3e-6 + 1000 * 15e-6))


async def test_a_failover_to_a_dearer_fallback_is_reserved_at_its_price(
    pg_schema: str, fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    """The route is cheap and fails; a fallback ten times dearer serves. Reserved at the route's
    price, 20 concurrent requests all pass and spend ~$1.20 against $0.20; reserved at the dearest
    place the cascade may serve them, spend stays within one request of the limit."""
    limit = 0.20
    async with FakeUpstream() as dear:
        config = Settings.model_validate(
            {
                "server": {"api_keys": [{"name": "k1", "key": KEY, "user": "carol"}]},
                "providers": [
                    {"name": "cheap", "type": "anthropic", "base_url": fake.url, "api_key": "sk-a",
                     "models": [{"name": "claude-sonnet-4-6", "max_output_tokens": 64_000}]},
                    {"name": "dear", "type": "anthropic", "base_url": dear.url, "api_key": "sk-b",
                     "models": [{"name": "claude-opus-4-1", "max_output_tokens": 64_000}]},
                ],
                "router": {
                    "default": "cheap,claude-sonnet-4-6",
                    "fallback": {"default": ["dear,claude-opus-4-1"]},
                },
                "routing": {"auto_fallback": "off"},
                "store": {"flush_interval_s": 0.05, "url": PG_URL, "schema_name": pg_schema},
                "prices": {
                    "cheap,claude-sonnet-4-6": {"input": 3, "output": 3},
                    "dear,claude-opus-4-1": {"input": 3, "output": 30},
                },
                "budgets": [{"name": "block", "period": "daily", "limit_usd": limit, "action": "block"}],
            }
        )  # fmt: skip
        url = await gateway(config)
        fake.script(*[Fault("status", status=500) for _ in range(20)])
        dear.script(*[Reply(text="ok", input_tokens=10, output_tokens=2000) for _ in range(20)])
        statuses = await asyncio.gather(*(send_body(url, {**BODY, "max_tokens": 4000}) for _ in range(20)))
        await asyncio.sleep(0.3)
        served, spent = await spent_usd(pg_schema)
    assert served == statuses.count(200) >= 1
    assert statuses.count(403) == 20 - served
    one_request = 10 * 3e-6 + 2000 * 30e-6
    assert spent <= limit + one_request, (statuses, spent)
