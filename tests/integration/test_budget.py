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

from ccrouter.codecs import anthropic as codec
from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream, Reply
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
