"""GET /api/sessions/{id} through a real gateway in front of the fake upstream: the route that served
a session's last request, a fallback marked, the spend today, 404 for an unknown session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import orjson
from gateway_support import GatewayFactory

from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream, Fault

MODEL = "claude-sonnet-4-6"
SESSION = "0f8c3a52-1b2d-4c6e-9a7f-3e5d1c2b4a60"
ADMIN = "admin-secret-token"
BODY = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}


def _settings(fake: FakeUpstream, tmp_path: Path) -> Settings:
    providers = [
        {"name": name, "type": "anthropic", "base_url": fake.url, "api_key": f"sk-{name}", "models": [MODEL]}
        for name in ("a", "b")
    ]
    return Settings.model_validate(
        {
            "server": {"admin_token": ADMIN},
            "providers": providers,
            "router": {"default": f"a,{MODEL}", "fallback": {"default": [f"b,{MODEL}"]}},
            "routing": {"strategy": "priority"},
            "prices": {f"a,{MODEL}": {"input": 3, "output": 15}, f"b,{MODEL}": {"input": 3, "output": 15}},
            "store": {"url": f"sqlite:///{tmp_path / 'usage.db'}", "flush_interval_s": 0.05},
        }
    )


async def _ask(http: aiohttp.ClientSession, url: str) -> None:
    headers = {"x-claude-code-session-id": SESSION, "content-type": "application/json"}
    async with http.post(url + "/v1/messages", data=orjson.dumps(BODY), headers=headers) as response:
        assert response.status == 200, await response.text()
        await response.read()


async def _session(http: aiohttp.ClientSession, url: str, session: str = SESSION) -> tuple[int, Any]:
    headers = {"authorization": f"Bearer {ADMIN}"}
    async with http.get(f"{url}/api/sessions/{session}", headers=headers) as response:
        return response.status, await response.json()


async def test_reports_route_spend_and_fallback(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    url = await gateway(_settings(fake, tmp_path))
    async with aiohttp.ClientSession() as http:
        await _ask(http, url)
        status, body = await _session(http, url)
        assert status == 200
        last = body["last_request"]
        assert (last["route"], last["scenario"], last["fallback"]) == (f"a,{MODEL}", "default", False)
        assert last["output_tokens"] > 0
        first_spend = body["today"]["spend_usd"]
        assert first_spend > 0
        assert body["today"]["requests"] == 1
        assert body["cooling"] == []

        fake.script(Fault("status", status=429, retry_after=30))
        await _ask(http, url)
        status, body = await _session(http, url)
        last = body["last_request"]
        assert (last["route"], last["fallback"], last["passed_over"]) == (f"b,{MODEL}", True, [f"a,{MODEL}"])
        assert body["today"]["requests"] == 2
        assert body["today"]["spend_usd"] > first_spend
        # The provider that refused cools down for its Retry-After.
        assert [(c["route"], c["state"]) for c in body["cooling"]] == [(f"a,{MODEL}", "rate_limited")]


async def test_unknown_session_is_404_and_auth_is_required(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    url = await gateway(_settings(fake, tmp_path))
    async with aiohttp.ClientSession() as http:
        status, body = await _session(http, url, "never-seen")
        assert status == 404
        assert body["error"]["type"] == "not_found_error"
        status, body = await _session(http, url, "x" * 300)
        assert status == 400
        async with http.get(f"{url}/api/sessions/{SESSION}") as response:
            assert response.status == 401


async def test_a_restarted_gateway_reads_the_ledger(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    settings = _settings(fake, tmp_path)
    first = await gateway(settings)
    async with aiohttp.ClientSession() as http:
        await _ask(http, first)
        _, before = await _session(http, first)
        async with http.get(f"{first}/api/usage", headers={"authorization": f"Bearer {ADMIN}"}) as r:
            assert r.status == 200  # flushes the ledger
        second = await gateway(settings)  # a new process's view: nothing in memory
        status, body = await _session(http, second)
        assert status == 200
        assert body["last_request"]["route"] == f"a,{MODEL}"
        assert body["today"]["spend_usd"] == before["today"]["spend_usd"]
