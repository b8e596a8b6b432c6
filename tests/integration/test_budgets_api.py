"""GET /api/budgets and the usage CSV download through the real app (issue 15's Costs page): each
budget's scope, limit, period, spend in its window, use and what happens at the limit; the managed
keys' own budgets; no secret; viewer may read, a client key may not; ``hour`` groups."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
from gateway_support import GatewayFactory

from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream

ADMIN = "admin-token-budgets-0123456789"
VIEWER = "viewer-key-budgets-0123456789"
CLIENT = "client-key-budgets-0123456789"
UPSTREAM_SECRET = "sk-upstream-budgets-secret"
BODY = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


def _settings(fake_url: str, tmp_path: Path) -> Settings:
    return Settings.model_validate(
        {
            "server": {
                "admin_token": ADMIN,
                "api_keys": [
                    {"name": "ana", "key": CLIENT, "user": "ana"},
                    {"name": "vic", "key": VIEWER, "role": "viewer"},
                ],
            },
            "providers": [
                {
                    "name": "up",
                    "type": "anthropic",
                    "base_url": fake_url,
                    "api_key": UPSTREAM_SECRET,
                    "models": ["claude-sonnet-4-6", "claude-haiku-4-5"],
                }
            ],
            "router": {"default": "up,claude-sonnet-4-6"},
            "store": {"url": f"sqlite:///{tmp_path / 'usage.db'}", "flush_interval_s": 0.05},
            "budgets": [
                {"name": "all", "period": "monthly", "limit_usd": 100},
                {"name": "per-user", "scope": "user", "period": "daily", "limit_usd": 1, "action": "warn"},
                {
                    "name": "team-web",
                    "scope": "team",
                    "match": "web",
                    "period": "weekly",
                    "limit_usd": 5,
                    "action": "downgrade",
                    "downgrade_to": "up,claude-haiku-4-5",
                },
            ],
        }
    )


async def _get(session: aiohttp.ClientSession, url: str, token: str = ADMIN) -> tuple[int, Any]:
    async with session.get(url, headers={"authorization": f"Bearer {token}"}) as response:
        return response.status, await response.json()


async def test_budgets_show_their_use_and_what_happens_at_the_limit(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    url = await gateway(_settings(fake.url, tmp_path))
    async with aiohttp.ClientSession() as s:
        for _ in range(2):
            async with s.post(url + "/v1/messages", json=BODY, headers={"x-api-key": CLIENT}) as r:
                assert r.status == 200
        await asyncio.sleep(0.2)
        status, body = await _get(s, url + "/api/budgets", VIEWER)
        assert status == 200, body
        rows = {(row["name"], row["scope"]): row for row in body["budgets"]}
        assert set(rows) == {("all", "global"), ("per-user", "user:ana"), ("team-web", "team:web")}
        spent = rows[("all", "global")]
        assert spent["used_usd"] > 0
        assert spent["use"] == round(spent["used_usd"] / 100, 4)
        assert (spent["period"], spent["limit_usd"], spent["action"]) == ("monthly", 100, "block")
        assert spent["since"] < spent["resets_at"]
        assert "refused" in spent["at_limit"]
        assert rows[("per-user", "user:ana")]["used_usd"] == spent["used_usd"]
        assert "warning" in rows[("per-user", "user:ana")]["at_limit"]
        team = rows[("team-web", "team:web")]
        assert (team["used_usd"], team["use"]) == (0, 0)
        assert team["downgrade_to"] == "up,claude-haiku-4-5"
        assert "claude-haiku-4-5" in team["at_limit"]
        assert UPSTREAM_SECRET not in str(body)
        assert CLIENT not in str(body)
        # A client key may not read them.
        status, refused = await _get(s, url + "/api/budgets", CLIENT)
        assert status == 403, refused
        assert refused["type"] == "error"


async def test_a_managed_key_s_budget_is_listed(gateway: GatewayFactory, tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {
            "server": {"admin_token": ADMIN},
            "providers": [{"name": "up", "type": "anthropic", "models": ["claude-sonnet-4-6"]}],
            "router": {"default": "up,claude-sonnet-4-6"},
            "store": {"url": f"sqlite:///{tmp_path / 'usage.db'}", "flush_interval_s": 0.05},
        }
    )
    url = await gateway(settings, simulated=True)
    auth = {"authorization": f"Bearer {ADMIN}"}
    async with aiohttp.ClientSession(headers=auth) as s:
        spec = {"name": "ana-laptop", "budget_usd": 5, "budget_period": "weekly"}
        async with s.post(url + "/api/keys", json=spec) as r:
            created = await r.json()
            assert r.status == 201, created
        status, body = await _get(s, url + "/api/budgets")
        assert status == 200
        (row,) = body["budgets"]
        assert row["name"] == f"key:{created['id']}"
        assert (row["source"], row["period"], row["limit_usd"], row["used_usd"]) == ("key", "weekly", 5, 0)
        assert created["key"] not in str(body)


async def test_the_usage_csv_is_a_download_and_hours_group(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    url = await gateway(_settings(fake.url, tmp_path))
    auth = {"authorization": f"Bearer {ADMIN}"}
    async with aiohttp.ClientSession(headers=auth) as s:
        async with s.post(url + "/v1/messages", json=BODY, headers={"x-api-key": CLIENT}) as r:
            assert r.status == 200
        async with s.get(url + "/api/usage?by=day,provider&format=csv") as r:
            assert r.status == 200
            assert r.headers["content-type"].startswith("text/csv")
            assert (
                r.headers["content-disposition"] == 'attachment; filename="ccrouter-usage-day-provider.csv"'
            )
            lines = (await r.text()).splitlines()
        assert lines[0].startswith("day,provider,requests,")
        assert len(lines) == 2
        status, body = await _get(s, url + "/api/usage?by=hour,model")
        assert status == 200, body
        (row,) = body["rows"]
        assert len(row["hour"]) == len("2026-12-03T08")
        assert row["hour"][10] == "T"
        assert row["model"] == "claude-sonnet-4-6"
        # JSON answers stay inline.
        async with s.get(url + "/api/usage?by=day") as r:
            assert "content-disposition" not in r.headers
