"""GET /api/requests through the real app: the request log with its route explanations and
fallbacks, filters, pages, and a 400 naming a bad parameter (issue 15's Requests page reads it)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
from gateway_support import GatewayFactory

from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream, Fault

ADMIN = "admin-token-requests-0123456789"
CLIENT = "client-key-requests-0123456789"
BODY = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


def _settings(primary: str, backup: str, tmp_path: Path) -> Settings:
    provider = {"type": "anthropic", "api_key": "sk-upstream-secret", "models": ["claude-sonnet-4-6"]}
    return Settings.model_validate(
        {
            "server": {"admin_token": ADMIN, "api_keys": [{"name": "ana", "key": CLIENT, "user": "ana"}]},
            "providers": [
                {"name": "main", "base_url": primary, **provider},
                {"name": "backup", "base_url": backup, **provider},
            ],
            "router": {
                "default": "main,claude-sonnet-4-6",
                "fallback": {"default": ["backup,claude-sonnet-4-6"]},
            },
            "store": {"url": f"sqlite:///{tmp_path / 'usage.db'}", "flush_interval_s": 0.05},
        }
    )


async def _get(session: aiohttp.ClientSession, url: str, token: str = ADMIN) -> tuple[int, Any]:
    async with session.get(url, headers={"authorization": f"Bearer {token}"}) as response:
        return response.status, await response.json()


async def test_the_request_log_explains_each_request(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    async with FakeUpstream() as backup:
        url = await gateway(_settings(fake.url, backup.url, tmp_path))
        async with aiohttp.ClientSession() as s:
            fake.script(Fault("status", status=529))  # the first request fails over to backup
            for _ in range(3):
                async with s.post(url + "/v1/messages", json=BODY, headers={"x-api-key": CLIENT}) as r:
                    assert r.status == 200
            await asyncio.sleep(0.2)  # the ledger writer's interval
            status, page = await _get(s, url + "/api/requests")
            assert status == 200, page
            rows = page["requests"]
            assert len(rows) == 3
            assert page["next"] is None
            oldest = rows[-1]
            assert oldest["provider"] == "backup"
            assert oldest["fallbacks"][0]["provider"] == "main"
            assert oldest["key"] == "ana"
            assert oldest["user"] == "ana"
            assert "default" in oldest["route_reason"]
            assert rows[0]["provider"] == "main"
            assert rows[0]["input_tokens"] > 0
            assert rows[0]["latency_ms"] > 0
            # Filters and pages.
            status, page = await _get(s, url + "/api/requests?provider=backup")
            assert [row["provider"] for row in page["requests"]] == ["backup"]
            status, first = await _get(s, url + "/api/requests?limit=2")
            assert len(first["requests"]) == 2
            status, second = await _get(s, url + f"/api/requests?limit=2&before={first['next']}")
            assert [row["id"] for row in second["requests"]] == [oldest["id"]]
            assert (await _get(s, url + "/api/requests?status=5xx"))[1]["requests"] == []
            # Bad parameters name themselves; a client key may not read the log.
            for query, named in (("limit=0", "limit"), ("status=7xx", "status"), ("colour=red", "colour")):
                status, body = await _get(s, url + f"/api/requests?{query}")
                assert status == 400, body
                assert named in body["error"]["message"]
            assert (await _get(s, url + "/api/requests", CLIENT))[0] == 403
