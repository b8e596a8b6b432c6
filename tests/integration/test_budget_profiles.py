"""Budgets per profile and per project (issue 13) through the real gateway and the fake upstream, on
SQLite and PostgreSQL: a profile over its budget is refused while other profiles and requests without
one still pass; without ``match`` each profile has its own limit; in-flight reservations count."""

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
from pydantic import ValidationError

from ccrouter.codecs.anthropic import codec
from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream, Reply
from ccrouter.tokens import TokenCounter

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
BODY = {"model": "claude-sonnet-4-6", "max_tokens": 100, "messages": [{"role": "user", "content": "hello"}]}
KEY = "client-key-1"


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    if request.param == "sqlite":
        yield {"url": f"sqlite:///{tmp_path / 'ledger.db'}"}
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        conn = await asyncpg.connect(PG_URL)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL is needed at {PG_URL} ({exc}); start it: `service postgresql start`")
    try:
        yield {"url": PG_URL, "schema_name": schema}
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


def tokens() -> int:
    """What the gateway counts for BODY; replies report exactly this, so with input-only prices the
    reservation made at admission is the cost billed."""
    return TokenCounter().count_request(codec.decode_request(dict(BODY)))


def config(
    fake_url: str, budgets: list[dict[str, Any]], store: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
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
        "routing": {"auto_fallback": "off"},
        "profiles": {"cheap": {}, "rich": {}},
        "store": {"flush_interval_s": 0.05, **(store or {})},
        "prices": {
            "up,claude-sonnet-4-6": {"input": 1, "output": 0},
            "cheap-model": {"input": 0, "output": 0},
        },
        "budgets": budgets,
    }


async def send(
    url: str, body: dict[str, Any] | None = None, **headers: str
) -> tuple[int, dict[str, str], Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url + "/v1/messages", json=body or BODY, headers={"x-api-key": KEY, **headers}
        ) as response,
    ):
        raw = await response.read()
        data = orjson.loads(raw) if response.content_type == "application/json" else raw
        return response.status, dict(response.headers), data


def profile(name: str) -> dict[str, str]:
    return {"x-ccrouter-profile": name}


async def test_a_profile_over_its_budget_is_refused_while_others_pass(
    store: dict[str, Any], fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    budget = {"name": "p-day", "scope": "profile", "match": "cheap", "period": "daily"}
    budget |= {"limit_usd": 1.5 * tokens() / 1e6, "action": "block"}  # room for one request, not two
    url = await gateway(Settings.model_validate(config(fake.url, [budget], store)))
    fake.script(*[Reply(text="ok", input_tokens=tokens(), output_tokens=3) for _ in range(6)])
    statuses = []
    for headers in (profile("cheap"), profile("cheap"), profile("rich"), profile("rich"), {}, {}):
        status, _, body = await send(url, **headers)
        statuses.append(status)
        if status != 200:
            refused = body
    assert statuses == [200, 403, 200, 200, 200, 200]
    assert refused["type"] == "error"
    assert refused["error"]["type"] == "permission_error"
    assert "'p-day' (profile:cheap, daily) is spent" in refused["error"]["message"]
    assert fake.pending == 1  # the refused request never reached the provider

    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as response:
        metrics = await response.text()
    assert (
        'ccr_budget_used_usd{action="block",budget="p-day",period="daily",scope="profile:cheap"}' in metrics
    )


async def test_without_match_each_profile_has_its_own_budget(
    store: dict[str, Any], fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    budget = {"name": "per-profile", "scope": "profile", "period": "daily", "limit_usd": 1.5 * tokens() / 1e6}
    url = await gateway(Settings.model_validate(config(fake.url, [budget], store)))
    fake.script(*[Reply(text="ok", input_tokens=tokens(), output_tokens=3) for _ in range(6)])
    order = [profile("cheap"), profile("cheap"), profile("rich"), profile("rich"), {}, {}]
    statuses = [(await send(url, **headers))[0] for headers in order]
    assert statuses == [200, 403, 200, 403, 200, 200]

    # Per-profile statuses read the ledger's spend by profile: wait for the writer (0.05 s batches).
    for _ in range(50):
        async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as response:
            metrics = await response.text()
        if all(f'scope="profile:{name}"' in metrics for name in ("cheap", "rich")):
            break
        await asyncio.sleep(0.05)
    used = [line for line in metrics.splitlines() if line.startswith("ccr_budget_used_usd{")]
    assert sorted(line.split('scope="')[1].split('"')[0] for line in used) == [
        "profile:cheap",
        "profile:rich",
    ]


async def test_concurrent_requests_of_a_profile_count_their_reservations(
    store: dict[str, Any], fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    # Streamed and slow: all eight are in flight together, so only reservations (which carry the
    # profile) can stop the budget being spent eight times over.
    budget = {"name": "p-day", "scope": "profile", "match": "cheap", "period": "daily"}
    budget |= {"limit_usd": 2.5 * tokens() / 1e6, "action": "block"}
    url = await gateway(Settings.model_validate(config(fake.url, [budget], store)))
    fake.script(
        *[Reply(text="ok " * 10, input_tokens=tokens(), output_tokens=3, chunk_delay=0.02) for _ in range(8)]
    )
    results = await asyncio.gather(
        *(send(url, {**BODY, "stream": True}, **profile("cheap")) for _ in range(8))
    )
    assert sorted(status for status, _, _ in results) == [200] * 2 + [403] * 6


async def test_a_project_budget_downgrades_that_project_only(
    tmp_path: Path, fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    budget = {"name": "billing", "scope": "project", "match": "billing-api", "period": "weekly"}
    budget |= {"limit_usd": 1.5 * tokens() / 1e6, "action": "downgrade", "downgrade_to": "up,cheap-model"}
    store = {"url": f"sqlite:///{tmp_path / 'ledger.db'}"}
    url = await gateway(Settings.model_validate(config(fake.url, [budget], store)))
    fake.script(*[Reply(text="ok", input_tokens=tokens(), output_tokens=3) for _ in range(4)])
    project = {"x-ccrouter-project": "billing-api"}
    answers = [
        await send(url, **headers) for headers in (project, project, {"x-ccrouter-project": "web"}, {})
    ]
    assert [status for status, _, _ in answers] == [200] * 4
    models = [headers["x-ccrouter-model"] for _, headers, _ in answers]
    assert models == ["claude-sonnet-4-6", "cheap-model", "claude-sonnet-4-6", "claude-sonnet-4-6"]
    assert "billing: spent, downgraded to up,cheap-model" in answers[1][1]["x-ccrouter-budget-warning"]


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        (
            {"scope": "department"},
            "Input should be 'global', 'key', 'user', 'team', 'profile' or 'project'",
        ),
        ({"scope": "profile", "match": "nope"}, "budgets.b: unknown profile 'nope' (have ['cheap', 'rich'])"),
        ({"scope": "project", "match": "bad name!"}, "a project name is letters, digits and _.-"),
        ({"scope": "profile", "match": "x" * 65}, "a profile name is letters, digits and _.-"),
    ],
)
def test_profile_and_project_budgets_are_checked_when_the_config_loads(
    budget: dict[str, Any], message: str
) -> None:
    rule = {"name": "b", "period": "daily", "limit_usd": 1, **budget}
    with pytest.raises(ValidationError, match=None) as caught:
        Settings.model_validate(config("http://127.0.0.1:9", [rule]))
    assert message in str(caught.value)


def test_profile_and_project_budgets_load() -> None:
    rules = [
        {"name": "p-day", "scope": "profile", "match": "cheap", "period": "daily", "limit_usd": 5},
        {"name": "per-profile", "scope": "profile", "period": "weekly", "limit_usd": 20},
        {"name": "per-project", "scope": "project", "period": "monthly", "limit_usd": 50, "action": "warn"},
    ]
    settings = Settings.model_validate(config("http://127.0.0.1:9", rules))
    assert [(rule.scope, rule.match) for rule in settings.budgets] == [
        ("profile", "cheap"),
        ("profile", None),
        ("project", None),
    ]
