"""Issue 14's acceptance, end to end: two gateway instances sharing a real PostgreSQL store and a
real Redis, managed keys created over the admin API of one and used on the other.

A created key works at once on its instance and within 2 s on the other; over its rpm it gets a 429
with retry-after; revoked on instance 1 it is refused on instance 2 within 2 s; rotated, its old
secret works through the grace period and stops after it; roles hold for managed keys; neither the
database nor the log holds a created secret; ``ccrouter audit`` shows the trail.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest
from gateway_support import GatewayFactory

from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
ADMIN = "admin-token-team-0123456789"
GOOD = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    try:
        conn = await asyncpg.connect(PG_URL)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL is needed at {PG_URL} ({exc}); start it: `service postgresql start`")
    try:
        yield name
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        await conn.close()


def _document(fake_url: str, schema: str, prefix: str) -> dict[str, Any]:
    return {
        "server": {"require_auth": True, "admin_token": ADMIN, "keys": {"poll_s": 1.0}},
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
        "store": {"url": PG_URL, "schema_name": schema, "flush_interval_s": 0.05},
        "state": {"redis_url": REDIS_URL, "key_prefix": prefix},
    }


async def _call(
    session: aiohttp.ClientSession, method: str, url: str, token: str | None, body: Any = None
) -> tuple[int, Any, dict[str, str]]:
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    async with session.request(method, url, json=body, headers=headers) as response:
        raw = await response.read()
        headers = {name.lower(): value for name, value in response.headers.items()}
        return response.status, orjson.loads(raw) if raw else None, headers


async def _until(check: Any, seconds: float) -> float:
    """Seconds until ``await check()`` is true (fails after ``seconds``)."""
    started = time.perf_counter()
    while not await check():
        if time.perf_counter() - started > seconds:
            pytest.fail(f"not within {seconds} s")
        await asyncio.sleep(0.05)
    return time.perf_counter() - started


async def test_keys_across_two_instances(
    schema: str,  # first: dropped after the gateways have closed (last-use times are written at close)
    fake: FakeUpstream,
    gateway: GatewayFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    prefix = f"ccr-test-{uuid.uuid4().hex[:8]}"
    document = _document(fake.url, schema, prefix)
    with caplog.at_level(logging.DEBUG):
        one = await gateway(Settings.model_validate(document))
        two = await gateway(Settings.model_validate(document))
        async with aiohttp.ClientSession() as s:
            # Created on instance 1: works there at once, and on instance 2 within 2 s.
            status, created, _ = await _call(
                s, "POST", one + "/api/keys", ADMIN, {"name": "alice", "user": "alice", "rpm": 2}
            )
            assert status == 201, created
            secret, key_id = created["key"], created["id"]
            assert (await _call(s, "POST", one + "/v1/messages", secret, GOOD))[0] == 200

            async def works_on_two() -> bool:
                return (await _call(s, "POST", two + "/v1/messages", secret, GOOD))[0] == 200

            assert await _until(works_on_two, 2.0) < 2.0
            # Over its rpm (2, shared by both instances through Redis): 429 with retry-after.
            status, body, headers = await _call(s, "POST", one + "/v1/messages", secret, GOOD)
            assert status == 429, body
            assert body["error"]["type"] == "rate_limit_error"
            assert int(headers["retry-after"]) >= 1
            assert (await _call(s, "POST", two + "/v1/messages", secret, GOOD))[0] == 429
            # Its last use shows at once on the instance it was used on (before any flush).
            status, shown, _ = await _call(s, "GET", one + f"/api/keys/{key_id}", ADMIN)
            assert status == 200
            assert shown["last_used_at"] is not None
            assert "key" not in shown

            # Rotated with a 1 s grace: both secrets work, then only the new one.
            status, rotated, _ = await _call(
                s, "POST", one + f"/api/keys/{key_id}/rotate", ADMIN, {"grace_s": 1.5}
            )
            assert status == 200, rotated
            new_secret = rotated["key"]
            assert new_secret != secret
            await _call(s, "PATCH", one + f"/api/keys/{key_id}", ADMIN, {"rpm": 1000})

            async def new_works_on_two() -> bool:
                return (await _call(s, "POST", two + "/v1/messages", new_secret, GOOD))[0] == 200

            await _until(new_works_on_two, 2.0)
            status, body, _ = await _call(s, "POST", two + "/v1/messages", secret, GOOD)
            assert status == 200, body  # still in its grace period
            await asyncio.sleep(1.6)
            status, body, _ = await _call(s, "POST", two + "/v1/messages", secret, GOOD)
            assert status == 401
            assert "rotated" in body["error"]["message"]

            # Revoked on instance 1: refused on instance 2 within 2 s.
            assert (await _call(s, "DELETE", one + f"/api/keys/{key_id}", ADMIN))[0] == 200

            async def refused_on_two() -> bool:
                return (await _call(s, "POST", two + "/v1/messages", new_secret, GOOD))[0] == 401

            assert await _until(refused_on_two, 2.0) < 2.0
            status, body, _ = await _call(s, "POST", two + "/v1/messages", new_secret, GOOD)
            assert "revoked" in body["error"]["message"]

            # Roles for managed keys: client, viewer, operator.
            made: dict[str, str] = {}
            for role in ("client", "viewer", "operator"):
                body = {"name": role, "role": role}
                status, key, _ = await _call(s, "POST", one + "/api/keys", ADMIN, body)
                assert status == 201, key
                made[role] = key["key"]

            async def viewer_and_operator_read_on_two() -> bool:
                # Each key reaches instance 2 on its own: wait for both that the checks below use.
                for role in ("viewer", "operator"):
                    if (await _call(s, "GET", two + "/api/usage", made[role]))[0] != 200:
                        return False
                return True

            await _until(viewer_and_operator_read_on_two, 2.0)
            assert (await _call(s, "GET", two + "/api/usage", made["client"]))[0] == 403
            status, _, _ = await _call(s, "POST", two + "/api/keys", made["viewer"], {"name": "x"})
            assert status == 403
            status, body, _ = await _call(s, "POST", two + "/api/keys", made["operator"], {"name": "c"})
            assert status == 201, body
            created_secrets = [secret, new_secret, *made.values(), body["key"]]
            status, body, _ = await _call(
                s, "POST", two + "/api/keys", made["operator"], {"name": "boss", "role": "admin"}
            )
            assert status == 403, body
            # Failed admin logins, for the audit trail.
            assert (await _call(s, "GET", one + "/api/usage", "wrong-admin-token"))[0] == 401
    # Neither the database nor any log line holds a created secret.
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f'SET search_path TO "{schema}"')
        dumped = ""
        for table in ("client_keys", "audit_log", "usage", "budget_reservations"):
            rows = await conn.fetch(f"SELECT * FROM {table}")
            dumped += repr([tuple(row.values()) for row in rows])
    finally:
        await conn.close()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for created_secret in created_secrets:
        assert created_secret not in dumped
        assert created_secret not in logged
        assert created_secret[4:] not in dumped
    # `ccrouter audit` (on the store directly) shows the creation, the revocation, the failed login.
    config = tmp_path / "config.yaml"
    await asyncio.to_thread(config.write_bytes, orjson.dumps(document))
    env = {**os.environ, "CCROUTER_CONFIG": str(config), "COLUMNS": "200", "HOME": str(tmp_path)}
    env.pop("CCROUTER_ADMIN_KEY", None)
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "ccrouter.cli.main", "audit", "--json", "--limit", "100"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    rows = orjson.loads(done.stdout)
    actions = [row["action"] for row in rows]
    assert "key.created" in actions
    assert "key.revoked" in actions
    assert "key.rotated" in actions
    assert "auth.failed" in actions
    denied = [row for row in rows if row["outcome"] == "denied" and row["action"] == "key.created"]
    assert denied, rows  # the operator's refused admin key
    revoked = next(row for row in rows if row["action"] == "key.revoked")
    assert revoked["target"] == key_id
    assert revoked["actor"] == "admin"
