"""The key and audit routes through the real app and a real SQLite ledger, with the admin token:
create (the secret once), list, show, update, rotate, revoke, the audit trail, and bad input."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from gateway_support import GatewayFactory

from ccrouter.auth.keys import hash_secret, looks_like_key
from ccrouter.config import Settings

ADMIN = "admin-token-for-keys-tests"
AUTH = {"authorization": f"Bearer {ADMIN}"}


# Static keys with a role (``server.api_keys[].role``): callers of each role without managed keys.
ROLE_KEYS = {role: f"{role}-static-key-0123456789" for role in ("viewer", "operator")}


def keys_settings(tmp_path: Path) -> Settings:
    return Settings.model_validate(
        {
            "server": {
                "admin_token": ADMIN,
                "keys": {"rotation_grace_s": 120},
                "api_keys": [
                    {"name": f"{role}-1", "key": key, "role": role} for role, key in ROLE_KEYS.items()
                ],
            },
            "providers": [{"name": "up", "type": "anthropic", "models": ["claude-sonnet-4-6"]}],
            "router": {"default": "up,claude-sonnet-4-6"},
            "store": {"url": f"sqlite:///{tmp_path / 'usage.db'}", "flush_interval_s": 0.05},
        }
    )


def database_bytes(folder: Path) -> bytes:
    """The SQLite ledger's files (the database and its write-ahead log) as they are on disk."""
    return b"".join(path.read_bytes() for path in folder.glob("usage.db*"))


@pytest.fixture
async def api(gateway: GatewayFactory, tmp_path: Path) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    url = await gateway(keys_settings(tmp_path), simulated=True)
    async with aiohttp.ClientSession(headers=AUTH) as session:
        yield url, session


async def call(
    session: aiohttp.ClientSession, method: str, url: str, body: Any = None, **options: Any
) -> tuple[int, Any]:
    async with session.request(method, url, json=body, **options) as response:
        return response.status, await response.json()


async def test_a_key_s_life_through_the_api(api: tuple[str, aiohttp.ClientSession], tmp_path: Path) -> None:
    url, session = api
    status, created = await call(
        session,
        "POST",
        url + "/api/keys",
        {
            "name": "ana-laptop",
            "user": "ana",
            "team": "web",
            "rpm": 30,
            "budget_usd": 5,
            "budget_period": "weekly",
        },
    )
    assert status == 201, created
    secret, key_id = created["key"], created["id"]
    assert looks_like_key(secret)
    assert created["prefix"] == secret[:8]
    assert (created["status"], created["role"], created["created_by"]) == ("active", "client", "admin")
    assert (created["spend_usd"], created["spend_period"]) == (0, "weekly")

    status, listed = await call(session, "GET", url + "/api/keys")
    assert status == 200
    assert [key["id"] for key in listed["keys"]] == [key_id]
    assert "key" not in listed["keys"][0]
    status, shown = await call(session, "GET", f"{url}/api/keys/{key_id}")
    assert status == 200
    assert shown["user"] == "ana"
    assert "key" not in shown

    status, updated = await call(
        session, "PATCH", f"{url}/api/keys/{key_id}", {"rpm": None, "models": ["up,*"]}
    )
    assert status == 200
    assert (updated["rpm"], updated["models"]) == (None, ["up,*"])

    status, rotated = await call(session, "POST", f"{url}/api/keys/{key_id}/rotate", {"grace_s": 60})
    assert status == 200
    assert looks_like_key(rotated["key"])
    assert rotated["key"] != secret
    assert rotated["rotated_until"] is not None
    status, default_grace = await call(session, "POST", f"{url}/api/keys/{key_id}/rotate")
    assert status == 200
    assert default_grace["key"] not in (secret, rotated["key"])

    status, revoked = await call(session, "DELETE", f"{url}/api/keys/{key_id}")
    assert status == 200
    assert revoked["status"] == "revoked"
    assert revoked["revoked_at"]

    status, trail = await call(session, "GET", url + "/api/audit")
    assert status == 200
    rows = [(e["action"], e["actor"], e["outcome"], e["target"], e["address"]) for e in trail["entries"]]
    assert rows == [
        ("key.revoked", "admin", "ok", key_id, "127.0.0.1"),
        ("key.rotated", "admin", "ok", key_id, "127.0.0.1"),
        ("key.rotated", "admin", "ok", key_id, "127.0.0.1"),
        ("key.updated", "admin", "ok", key_id, "127.0.0.1"),
        ("key.created", "admin", "ok", key_id, "127.0.0.1"),
    ]
    assert trail["entries"][1]["detail"] == {"name": "ana-laptop", "grace_s": 120.0}
    status, some = await call(
        session, "GET", url + "/api/audit", params={"action": "key.rotated", "limit": "1"}
    )
    assert status == 200
    assert [e["action"] for e in some["entries"]] == ["key.rotated"]
    status, none = await call(session, "GET", url + "/api/audit", params={"actor": "somebody"})
    assert status == 200
    assert none["entries"] == []
    status, recent = await call(session, "GET", url + "/api/audit", params={"since": "1h"})
    assert status == 200
    assert len(recent["entries"]) == 5

    # No secret made here is anywhere in the database file, nor in any answer that was not its own.
    data = await asyncio.to_thread(database_bytes, tmp_path)
    for made in (secret, rotated["key"], default_grace["key"]):
        assert made.encode() not in data
        assert made not in repr(trail)
        assert made not in repr(listed)
    assert hash_secret(default_grace["key"]).encode() in data  # what it keeps instead


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("POST", "/api/keys", b"{not json", 400, "body: not valid JSON"),
        ("POST", "/api/keys", b"[1, 2]", 400, "body: expected a JSON object"),
        ("POST", "/api/keys", b"", 400, "body: not valid JSON"),
        ("POST", "/api/keys", b'{"name": "a", "colour": "red"}', 400, "colour: unknown field"),
        ("POST", "/api/keys", b'{"name": "a", "rpm": 0}', 400, "rpm: Input should be greater than 0"),
        ("POST", "/api/keys", b'{"name": "a", "role": "root"}', 400, "role: Input should be"),
        ("POST", "/api/keys", b'{"name": "a", "expires": "later"}', 400, "expires: expected a duration"),
        ("POST", "/api/keys", b'{"name": "' + b"a" * 20_000 + b'"}', 413, "body: larger than 16384 bytes"),
        ("GET", "/api/keys/key_0123456789abcdef", None, 404, "no key 'key_0123456789abcdef'"),
        ("DELETE", "/api/keys/nope", None, 404, "no key 'nope'"),
        ("PATCH", "/api/keys/nope", b'{"rpm": 5}', 404, "no key 'nope'"),
        ("PATCH", "/api/keys/nope", b'{"hash": "00"}', 400, "hash: unknown field"),
        ("POST", "/api/keys/nope/rotate", b'{"grace": 5}', 400, "grace: unknown field"),
        ("POST", "/api/keys/nope/rotate", b'{"grace_s": "1h"}', 400, "grace_s: expected a number of seconds"),
        ("GET", "/api/audit?limit=0", None, 400, "limit: expected 1 to 1000"),
        ("GET", "/api/audit?limit=99999999999", None, 400, "limit: expected 1 to 1000"),
        ("GET", "/api/audit?since=yesterday", None, 400, "since: expected unix seconds or an ISO date"),
        ("GET", "/api/audit?action=" + "a" * 300, None, 400, "action: longer than 200 characters"),
    ],
)
async def test_bad_input_is_a_4xx_in_the_anthropic_envelope_naming_the_field(
    api: tuple[str, aiohttp.ClientSession],
    method: str,
    path: str,
    body: bytes | None,
    status: int,
    message: str,
) -> None:
    url, session = api
    async with session.request(
        method, url + path, data=body, headers={"content-type": "application/json"}
    ) as response:
        answer = await response.json()
        assert response.status == status, answer
    assert answer["type"] == "error"
    assert answer["error"]["message"].startswith(message), answer


async def test_rotating_or_revoking_a_revoked_key_is_a_conflict(
    api: tuple[str, aiohttp.ClientSession],
) -> None:
    url, session = api
    _, created = await call(session, "POST", url + "/api/keys", {"name": "gone"})
    assert (await call(session, "DELETE", f"{url}/api/keys/{created['id']}"))[0] == 200
    for method, path in (("DELETE", ""), ("POST", "/rotate")):
        status, answer = await call(session, method, f"{url}/api/keys/{created['id']}{path}")
        assert status == 409
        assert answer["error"]["message"] == f"key {created['id']} is revoked"


async def test_the_routes_need_the_admin_token(api: tuple[str, aiohttp.ClientSession]) -> None:
    url, _ = api
    async with aiohttp.ClientSession() as anonymous:
        status, answer = await call(anonymous, "POST", url + "/api/keys", {"name": "sneaky"})
        assert status == 401
        assert answer["error"]["type"] == "authentication_error"
        status, _ = await call(
            anonymous, "GET", url + "/api/audit", headers={"authorization": "Bearer wrong"}
        )
        assert status == 401
    _, session = api
    status, listed = await call(session, "GET", url + "/api/keys")
    assert status == 200
    assert listed["keys"] == []


async def test_roles_on_the_key_routes(api: tuple[str, aiohttp.ClientSession]) -> None:
    url, admin = api
    _, admin_key = await call(admin, "POST", url + "/api/keys", {"name": "root", "role": "admin"})
    viewer = {"authorization": f"Bearer {ROLE_KEYS['viewer']}"}
    operator = {"authorization": f"Bearer {ROLE_KEYS['operator']}"}
    async with aiohttp.ClientSession() as session:
        # A viewer reads keys and the trail, and writes nothing.
        status, listed = await call(session, "GET", url + "/api/keys", headers=viewer)
        assert status == 200
        assert [key["name"] for key in listed["keys"]] == ["root"]
        assert (await call(session, "GET", url + "/api/audit", headers=viewer))[0] == 200
        status, _ = await call(session, "POST", url + "/api/keys", {"name": "mine"}, headers=viewer)
        assert status == 403
        # An operator creates and manages client keys, not admin keys, nor keys above client.
        status, made = await call(session, "POST", url + "/api/keys", {"name": "team"}, headers=operator)
        assert status == 201
        assert made["created_by"] == "operator-1"
        status, refused = await call(
            session, "POST", url + "/api/keys", {"name": "up", "role": "admin"}, headers=operator
        )
        assert status == 403
        assert refused["error"]["message"] == "an operator cannot give a key role admin (client only)"
        status, _ = await call(session, "DELETE", f"{url}/api/keys/{admin_key['id']}", headers=operator)
        assert status == 403
        status, _ = await call(
            session, "PATCH", f"{url}/api/keys/{made['id']}", {"role": "operator"}, headers=operator
        )
        assert status == 403
        status, rotated = await call(session, "POST", f"{url}/api/keys/{made['id']}/rotate", headers=operator)
        assert status == 200
        assert looks_like_key(rotated["key"])
    _, trail = await call(admin, "GET", url + "/api/audit", params={"actor": "operator-1"})
    assert [(e["action"], e["outcome"]) for e in trail["entries"]] == [
        ("key.rotated", "ok"),
        ("key.updated", "denied"),
        ("key.revoked", "denied"),
        ("key.created", "denied"),
        ("key.created", "ok"),
    ]
    assert trail["entries"][2]["target"] == admin_key["id"]
