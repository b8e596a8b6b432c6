"""Roles on the admin API (issue 14): client < viewer < operator < admin, each credential kind.

Static keys carry a role in the config (``server.api_keys[].role``); managed keys and single sign-on
tokens get theirs from the store and the token's claims (their own tests). A wrong credential is a
401, a role too low a 403 that names the role needed; every role may call the model endpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import orjson
from gateway_support import GatewayFactory

from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream

ADMIN = "admin-token-0123456789"
KEYS = {role: f"{role}-key-0123456789abcdef" for role in ("client", "viewer", "operator", "admin")}
GOOD = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


def _settings(fake_url: str, tmp_path: Path, **server: Any) -> Settings:
    return Settings.model_validate(
        {
            "server": {
                "admin_token": ADMIN,
                "api_keys": [{"name": f"{role}-key", "key": key, "role": role} for role, key in KEYS.items()],
                **server,
            },
            "providers": [
                {
                    "name": "up",
                    "type": "anthropic",
                    "base_url": fake_url,
                    "api_key": "sk-upstream-secret",
                    "models": ["claude-sonnet-4-6"],
                }
            ],
            "router": {"default": "up,claude-sonnet-4-6"},
            "store": {"url": f"sqlite:///{tmp_path / 'usage.db'}", "flush_interval_s": 0.05},
        }
    )


async def _call(url: str, method: str, path: str, token: str | None, body: Any = None) -> tuple[int, Any]:
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url + path, headers=headers, json=body) as response,
    ):
        raw = await response.read()
        try:
            return response.status, orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            return response.status, raw


async def test_each_role_reads_and_writes_what_it_may(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    url = await gateway(_settings(fake.url, tmp_path))
    # A client key cannot reach /api/* at all; the refusal names the role needed.
    status, body = await _call(url, "GET", "/api/usage", KEYS["client"])
    assert status == 403
    assert body["error"]["type"] == "permission_error"
    assert "needs role viewer" in body["error"]["message"]
    assert "client" in body["error"]["message"]
    # A viewer reads but writes nothing.
    assert (await _call(url, "GET", "/api/usage", KEYS["viewer"]))[0] == 200
    assert (await _call(url, "GET", "/api/config", KEYS["viewer"]))[0] == 200
    status, body = await _call(url, "POST", "/api/keys", KEYS["viewer"], {"name": "x"})
    assert status == 403
    assert "needs role operator" in body["error"]["message"]
    assert (await _call(url, "POST", "/api/config/reload", KEYS["viewer"]))[0] == 403
    # An operator may reload (no config file here: 409, past the role check); admin-only writes stay
    # closed to it.
    assert (await _call(url, "POST", "/api/config/reload", KEYS["operator"]))[0] == 409
    status, body = await _call(url, "POST", "/api/something-else", KEYS["operator"])
    assert status == 403
    assert "needs role admin" in body["error"]["message"]
    # The reload attempt is in the audit trail, under the operator's key.
    status, trail = await _call(url, "GET", "/api/audit?action=config.*", ADMIN)
    assert status == 200, trail
    rows = trail["entries"]
    assert [(row["actor"], row["action"]) for row in rows] == [("operator-key", "config.reloaded")]
    # An admin key and the admin token pass every role check (an unknown path is then a 404).
    for token in (KEYS["admin"], ADMIN):
        assert (await _call(url, "POST", "/api/config/reload", token))[0] == 409
        assert (await _call(url, "POST", "/api/something-else", token))[0] == 404
    # Missing or wrong credentials are 401, in the Anthropic envelope.
    for token in (None, "wrong-token-0123456789", ADMIN + "x"):
        status, body = await _call(url, "GET", "/api/usage", token)
        assert status == 401
        assert body["error"]["type"] == "authentication_error"


async def test_every_role_may_call_the_model_endpoints(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    url = await gateway(_settings(fake.url, tmp_path))
    for token in (*KEYS.values(), ADMIN):
        status, body = await _call(url, "POST", "/v1/messages", token, GOOD)
        assert status == 200, body
    assert (await _call(url, "POST", "/v1/messages", None, GOOD))[0] == 401
    status, body = await _call(url, "POST", "/v1/messages", "wrong-token-0123456789", GOOD)
    assert status == 401
    assert body["error"]["message"] == "invalid API key"


async def test_protected_observability_needs_a_viewer(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    url = await gateway(_settings(fake.url, tmp_path, protect_observability=True))
    for path in ("/metrics", "/health/providers"):
        assert (await _call(url, "GET", path, None))[0] == 401
        assert (await _call(url, "GET", path, KEYS["client"]))[0] == 403
        assert (await _call(url, "GET", path, KEYS["viewer"]))[0] == 200
    assert (await _call(url, "GET", "/health", None))[0] == 200
