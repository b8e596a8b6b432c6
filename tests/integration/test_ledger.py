"""The usage ledger end to end: requests through the gateway to a fake upstream with known usage,
then the ledger, /api/usage and `ccrouter costs` must agree with the expected sums, to the pico-dollar."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest
from gateway_support import GatewayFactory
from typer.testing import CliRunner

from ccrouter.cli.main import app as cli_app
from ccrouter.config import Settings
from ccrouter.config_file import dump_yaml
from ccrouter.testing import FakeUpstream, Reply

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
ADMIN = "admin-secret-token"
# Prices with awkward decimals: any float arithmetic would show in the sums.
PRICE = {"input": 0.27, "output": 1.1, "cache_read": 0.07}


def document(fake_url: str, store: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "server": {
            "admin_token": ADMIN,
            "api_keys": [
                "plain-client-key",
                {"name": "alice-laptop", "key": "alice-client-key", "user": "alice"},
                {"name": "team", "key": "team-client-key", "user_header": True},
            ],
        },
        "providers": [
            {
                "name": "up",
                "type": "anthropic",
                "base_url": fake_url,
                "api_key": "sk-upstream-secret",
                "models": ["claude-sonnet-4-6", "cheap-model"],
            }
        ],
        "router": {"default": "up,claude-sonnet-4-6"},
        "store": {"flush_interval_s": 0.05, **store},
        "prices": {"up,claude-sonnet-4-6": PRICE, "cheap-model": {"input": 0.01, "output": 0.02}},
        **extra,
    }


def expected_picos(input_tokens: int, output_tokens: int, cache_read: int) -> int:
    total = (
        input_tokens * Decimal("0.27") + output_tokens * Decimal("1.1") + cache_read * Decimal("0.07")
    ) * 10**6
    assert total == total.to_integral_value()
    return int(total)


async def pg_connect() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(PG_URL)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL is needed at {PG_URL} ({exc}); start it: `service postgresql start` "
            "(trust auth, user postgres, database test)"
        )


@pytest.fixture(params=["sqlite", "postgres"])
async def store_conf(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """The ``store:`` section for each backend: a temporary SQLite file, or a fresh PG schema."""
    if request.param == "sqlite":
        yield store_for("sqlite", tmp_path, None)
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    conn = await pg_connect()
    try:
        yield store_for("postgres", tmp_path, schema)
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


def store_for(kind: str, tmp_path: Path, schema: str | None) -> dict[str, Any]:
    if kind == "sqlite":
        return {"url": f"sqlite:///{tmp_path / 'ledger.db'}"}
    return {"url": PG_URL, "schema_name": schema}


async def post(session: aiohttp.ClientSession, url: str, key: str, *, stream: bool, **headers: str) -> Any:
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 100,
        "stream": stream,
        "messages": [{"role": "user", "content": "hello"}],
    }
    async with session.post(
        url + "/v1/messages",
        json=body,
        headers={"x-api-key": key, "anthropic-version": "2023-06-01", **headers},
    ) as response:
        await response.read()
        return response.status, dict(response.headers)


def make_replies(seed: int, count: int) -> list[Reply]:
    rng = random.Random(seed)
    return [
        Reply(
            text="ok",
            input_tokens=rng.randint(1, 5000),
            output_tokens=rng.randint(1, 900),
            cache_read_tokens=rng.choice([0, 0, rng.randint(1, 20000)]),
        )
        for _ in range(count)
    ]


KEYS = ["plain-client-key", "alice-client-key", "team-client-key"]


async def send_all(url: str, count: int) -> list[tuple[int, dict[str, str]]]:
    results: list[tuple[int, dict[str, str]]] = []
    async with aiohttp.ClientSession() as session:
        for start in range(0, count, 10):
            batch = [
                post(
                    session,
                    url,
                    KEYS[i % 3],
                    stream=i % 2 == 0,
                    **({"x-ccrouter-user": "bob"} if i % 3 == 2 else {}),
                )
                for i in range(start, min(count, start + 10))
            ]
            results.extend(await asyncio.gather(*batch))
    return results


async def api_usage(url: str, token: str | None = ADMIN, **params: str | list[str]) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.get(
            url + "/api/usage",
            params=[(k, v) for k, vs in params.items() for v in ([vs] if isinstance(vs, str) else vs)],
        ) as response,
    ):
        body = await response.read()
        ctype = response.headers.get("content-type", "")
        return response.status, orjson.loads(body) if "json" in ctype else body.decode()


async def test_hundred_requests_sum_exactly(
    store_conf: dict[str, Any], tmp_path: Path, fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    data = document(fake.url, store_conf)
    url = await gateway(Settings.model_validate(data))
    replies = make_replies(4, 100)
    fake.script(*replies)
    results = await send_all(url, 100)
    assert [status for status, _ in results] == [200] * 100
    costs = {expected_picos(r.input_tokens or 0, r.output_tokens or 0, r.cache_read_tokens) for r in replies}
    for i, (_, headers) in enumerate(results):
        if i % 2 == 0:  # streamed: headers leave before the usage is known
            assert "x-ccrouter-cost-usd" not in headers
        else:
            assert int(Decimal(headers["x-ccrouter-cost-usd"]) * 10**12) in costs

    status, report = await api_usage(url, by="key,user")
    assert status == 200
    rows = report["rows"]
    assert {row["key"]: row["user"] for row in rows} == {
        "key-" + _sha("plain-client-key"): None,
        "alice-laptop": "alice",
        "team": "bob",
    }
    assert sum(row["requests"] for row in rows) == 100
    assert sum(row["input_tokens"] for row in rows) == sum(r.input_tokens or 0 for r in replies)
    assert sum(row["output_tokens"] for row in rows) == sum(r.output_tokens or 0 for r in replies)
    assert sum(row["cache_read_tokens"] for row in rows) == sum(r.cache_read_tokens for r in replies)
    assert sum(row["estimated"] + row["unpriced"] + row["errors"] for row in rows) == 0
    expected = sum(
        expected_picos(r.input_tokens or 0, r.output_tokens or 0, r.cache_read_tokens) for r in replies
    )
    assert sum(Decimal(row["cost_usd"]) for row in rows) == Decimal(expected) / 10**12

    config_file = tmp_path / "config.yaml"
    await asyncio.to_thread(config_file.write_text, dump_yaml(data))
    args = ["costs", "--config", str(config_file), "--by", "key,user", "--format", "json"]
    # In a thread: the command runs its own event loop.
    result = await asyncio.to_thread(CliRunner().invoke, cli_app, args)
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output) == rows
    status, csv_text = await api_usage(url, by="model", format="csv")
    assert csv_text.splitlines()[1].startswith("claude-sonnet-4-6,100,0,")

    # The Costs page's questions: the top values by spend, and some values only.
    ranked = sorted(rows, key=lambda row: -Decimal(row["cost_usd"]))
    status, top = await api_usage(url, by="key", limit="2")
    assert status == 200
    assert [row["key"] for row in top["rows"]] == [row["key"] for row in ranked[:2]]
    status, kept = await api_usage(url, by="user", user=["alice", ""])  # "": no user
    assert sorted(row["user"] or "" for row in kept["rows"]) == ["", "alice"]
    assert sum(row["requests"] for row in kept["rows"]) == 100 - 33
    for bad in ({"limit": "0"}, {"limit": "lots"}, {"subagent": "maybe"}, {"day": "2026-12-01"}):
        status, problem = await api_usage(url, by="key", **bad)
        assert status == 400, bad
        assert problem["error"]["type"] == "invalid_request_error"


async def test_admin_token_guards_api(tmp_path: Path, fake: FakeUpstream, gateway: GatewayFactory) -> None:
    data = document(fake.url, store_for("sqlite", tmp_path, None))
    url = await gateway(Settings.model_validate(data))
    assert (await api_usage(url, token=None))[0] == 401
    assert (await api_usage(url, token="wrong"))[0] == 401
    # A client key is not an admin token.
    assert (await api_usage(url, token="plain-client-key"))[0] == 403
    assert (await api_usage(url))[0] == 200
    del data["server"]["admin_token"]
    other = await gateway(
        Settings.model_validate({**data, "store": store_for("sqlite", tmp_path / "b", None)})
    )
    status, body = await api_usage(other, token="anything")
    assert status == 401
    assert "server.admin_token" in body["error"]["message"]


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:12]


async def test_usage_is_estimated_and_marked_when_the_provider_reports_none(
    tmp_path: Path, fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    data = document(fake.url, store_for("sqlite", tmp_path, None))
    # An OpenAI-format upstream whose usage is all zeros, as some local servers send.
    data["providers"][0].update(type="openai", base_url=fake.url + "/v1")
    url = await gateway(Settings.model_validate(data))
    # 40 characters of text and no usage at all: about 10 output tokens each, marked as estimates.
    fake.script(*(Reply(text="x" * 40, input_tokens=0, output_tokens=0) for _ in range(2)))
    async with aiohttp.ClientSession() as session:
        for stream in (False, True):
            await post(session, url, "plain-client-key", stream=stream)
    await asyncio.sleep(0.3)  # the writer flushes every 0.05 s
    status, report = await api_usage(url, by="provider")
    assert status == 200
    (row,) = report["rows"]
    assert (row["requests"], row["estimated"], row["output_tokens"]) == (2, 2, 20)
    assert row["input_tokens"] > 0
