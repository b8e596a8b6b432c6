"""Per-project profiles and Claude Code's subagents through the real gateway and the fake upstream:
the project headers route (profile, then x-ccrouter-routes), bad ones are 400s in the client's
envelope, the billing line's cc_is_subagent flag takes router.subagent, and the ledger records the
project, the profile and the subagent (SQLite and PostgreSQL) for `ccrouter costs --by`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from gateway_support import GatewayFactory
from test_ledger import PG_URL, pg_connect
from typer.testing import CliRunner

from ccrouter.cli.main import app as cli_app
from ccrouter.config import Settings
from ccrouter.config_file import dump_yaml
from ccrouter.testing import FakeUpstream

MODELS = ["main-model", "cheap-model", "header-model", "sub-model", "tag-model"]
# As Claude Code 2.1.332 sends it for an Agent-tool subagent (captured; its main thread has no flag).
SUBAGENT_BILLING = (
    "x-anthropic-billing-header: cc_version=2.1.332.322; cc_entrypoint=sdk-cli; cc_is_subagent=true;"
)
MAIN_BILLING = "x-anthropic-billing-header: cc_version=2.1.332.a15; cc_entrypoint=sdk-cli;"
SESSION = "740f0b06-774f-4ec2-8091-ddc9e8f66c7a"


def document(fake_url: str, store: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "providers": [
            {"name": "up", "type": "anthropic", "base_url": fake_url, "api_key": "sk-up", "models": MODELS}
        ],
        "router": {"default": "up,main-model", "subagent": "up,sub-model"},
        "profiles": {"cheap": {"router": {"default": "up,cheap-model"}, "routing": {"strategy": "cost"}}},
        "prices": {"up,main-model": {"input": 1, "output": 2}, "up,sub-model": {"input": 0.5, "output": 1}},
        "store": {"flush_interval_s": 0.05, **(store or {})},
    }


def body(*system: str, model: str = "claude-sonnet-4-6") -> dict[str, Any]:
    out: dict[str, Any] = {"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    if system:
        out["system"] = [{"type": "text", "text": text} for text in system]
    return out


async def post(url: str, payload: dict[str, Any], path: str = "/v1/messages", **headers: str) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + path, json=payload, headers=headers) as response,
    ):
        return response.status, dict(response.headers), orjson.loads(await response.read())


@pytest.fixture
async def url(tmp_path: Path, fake: FakeUpstream, gateway: GatewayFactory) -> str:
    store = {"url": f"sqlite:///{tmp_path / 'ledger.db'}"}
    return await gateway(Settings.model_validate(document(fake.url, store)))


async def test_a_profile_header_routes_to_the_profile_and_a_routes_header_over_it(
    url: str, fake: FakeUpstream
) -> None:
    status, headers, _ = await post(url, body(), **{"x-ccrouter-project": "api"})
    assert (status, headers["x-ccrouter-model"]) == (200, "main-model")
    assert "strategy intelligent" in headers["x-ccrouter-route-reason"]
    status, headers, _ = await post(url, body(), **{"x-ccrouter-profile": "cheap"})
    assert (status, headers["x-ccrouter-model"], headers["x-ccrouter-scenario"]) == (
        200,
        "cheap-model",
        "default",
    )
    assert "(profile cheap)" in headers["x-ccrouter-route-reason"]
    assert "strategy cost" in headers["x-ccrouter-route-reason"]  # the profile's strategy
    status, headers, _ = await post(
        url,
        body(),
        **{
            "x-ccrouter-profile": "cheap",
            "x-ccrouter-routes": "default=up,header-model;think=up,cheap-model",
        },
    )
    assert (status, headers["x-ccrouter-model"]) == (200, "header-model")
    assert "(x-ccrouter-routes)" in headers["x-ccrouter-route-reason"]
    # A scenario the config leaves unset takes its route from the header.
    thinking = {**body(), "thinking": {"type": "enabled", "budget_tokens": 1024}}
    status, headers, _ = await post(url, thinking, **{"x-ccrouter-routes": "think=up,tag-model"})
    assert (status, headers["x-ccrouter-model"], headers["x-ccrouter-scenario"]) == (
        200,
        "tag-model",
        "think",
    )
    assert [r.model for r in fake.requests] == ["main-model", "cheap-model", "header-model", "tag-model"]


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"x-ccrouter-profile": "nope"}, "x-ccrouter-profile: unknown profile 'nope' (profiles: cheap)"),
        ({"x-ccrouter-project": "two words"}, "x-ccrouter-project: expected a name"),
        ({"x-ccrouter-project": "x" * 65}, "x-ccrouter-project: expected a name"),
        ({"x-ccrouter-routes": "default=other,main-model"}, "unknown provider 'other'"),
        ({"x-ccrouter-routes": "default=up,gpt-9"}, "has no model 'gpt-9'"),
        ({"x-ccrouter-routes": "thinking=up,main-model"}, "x-ccrouter-routes: unknown scenario 'thinking'"),
        ({"x-ccrouter-routes": "default"}, "x-ccrouter-routes: expected scenario=provider,model"),
        ({"x-ccrouter-routes": "default=up,main-model;" * 200}, "x-ccrouter-routes: longer than 2048"),
    ],
)
async def test_bad_project_headers_are_400s_in_both_envelopes(
    url: str, fake: FakeUpstream, headers: dict[str, str], message: str
) -> None:
    status, _, error = await post(url, body(), **headers)
    assert status == 400
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert message in error["error"]["message"]
    chat = {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]}
    status, _, error = await post(url, chat, "/v1/chat/completions", **headers)
    assert status == 400
    assert error["error"]["type"] == "invalid_request_error"
    assert message in error["error"]["message"]
    assert fake.requests == []


async def test_the_subagent_flag_takes_router_subagent_and_the_tag_wins_in_any_system_block(
    url: str, fake: FakeUpstream
) -> None:
    status, headers, _ = await post(url, body(MAIN_BILLING, "You are Claude Code."))
    assert (status, headers["x-ccrouter-model"]) == (200, "main-model")
    status, headers, _ = await post(url, body(SUBAGENT_BILLING, "You are an agent."))
    assert (status, headers["x-ccrouter-model"], headers["x-ccrouter-scenario"]) == (
        200,
        "sub-model",
        "subagent",
    )
    assert "cc_is_subagent=true" in headers["x-ccrouter-route-reason"]
    # The flag wins over a profile's default; the profile's subagent route would win over the config's.
    status, headers, _ = await post(url, body(SUBAGENT_BILLING), **{"x-ccrouter-profile": "cheap"})
    assert headers["x-ccrouter-model"] == "sub-model"
    status, headers, _ = await post(
        url, body(SUBAGENT_BILLING), **{"x-ccrouter-routes": "subagent=up,header-model"}
    )
    assert headers["x-ccrouter-model"] == "header-model"
    # An explicit provider,model still wins.
    status, headers, _ = await post(url, body(SUBAGENT_BILLING, model="up,main-model"))
    assert (headers["x-ccrouter-model"], headers["x-ccrouter-scenario"]) == ("main-model", "explicit")
    # The tag, in the third system block, wins over router.subagent and never reaches the provider.
    tagged = body(
        SUBAGENT_BILLING,
        "You are Claude Code.",
        "Review. <CCR-SUBAGENT-MODEL>up,tag-model</CCR-SUBAGENT-MODEL>",
    )
    status, headers, _ = await post(url, tagged)
    assert (status, headers["x-ccrouter-model"], headers["x-ccrouter-scenario"]) == (
        200,
        "tag-model",
        "subagent",
    )
    assert b"CCR-SUBAGENT-MODEL" not in fake.requests[-1].raw
    assert fake.requests[-1].body["system"][-1]["text"] == "Review. "


@pytest.fixture(params=["sqlite", "postgres"])
async def store_conf(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    if request.param == "sqlite":
        yield {"url": f"sqlite:///{tmp_path / 'ledger.db'}"}
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    conn = await pg_connect()
    try:
        yield {"url": PG_URL, "schema_name": schema}
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def costs(config_file: Path, by: str) -> list[dict[str, Any]]:
    args = ["costs", "--config", str(config_file), "--by", by, "--format", "json"]
    # In a thread: the command runs its own event loop.
    result = await asyncio.to_thread(CliRunner().invoke, cli_app, args)
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = orjson.loads(result.output)
    return rows


async def test_the_ledger_records_project_profile_and_subagent(
    store_conf: dict[str, Any], tmp_path: Path, fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    data = document(fake.url, store_conf)
    url = await gateway(Settings.model_validate(data))
    session = {"x-claude-code-session-id": SESSION}
    project = {**session, "x-ccrouter-project": "billing-api"}
    for payload, headers in [
        (body(MAIN_BILLING), project),
        (body(SUBAGENT_BILLING), project),
        (body(SUBAGENT_BILLING), project),
        (body(MAIN_BILLING), {**session, "x-ccrouter-project": "web", "x-ccrouter-profile": "cheap"}),
        (body(MAIN_BILLING), {}),
    ]:
        status, _, _ = await post(url, payload, **headers)
        assert status == 200
    config_file = tmp_path / "config.yaml"
    await asyncio.to_thread(config_file.write_text, dump_yaml(data))
    await asyncio.sleep(0.3)  # the ledger's writer commits every 0.05 s

    by_project = {row["project"]: row for row in await costs(config_file, "project")}
    assert {name: row["requests"] for name, row in by_project.items()} == {
        "billing-api": 3,
        "web": 1,
        None: 1,
    }
    by_profile = {row["profile"]: row["requests"] for row in await costs(config_file, "profile")}
    assert by_profile == {"cheap": 1, None: 4}
    split = await costs(config_file, "session,subagent")
    assert {(row["session"], row["subagent"]): row["requests"] for row in split} == {
        (SESSION, "false"): 2,
        (SESSION, "true"): 2,
        (None, "false"): 1,
    }
    sub = next(row for row in split if row["subagent"] == "true")
    main = next(row for row in split if row["session"] == SESSION and row["subagent"] == "false")
    assert sub["cost_usd"] != "0"
    assert main["cost_usd"] != "0"
    whole = {row["session"]: row for row in await costs(config_file, "session")}
    assert whole[SESSION]["requests"] == 4
