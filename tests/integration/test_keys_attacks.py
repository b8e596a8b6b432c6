"""Hostile credentials against a gateway with managed keys (issue 14, Bad input and attacks).

Malformed and oversized keys, a revoked key reused, a key after its expiry, and a flood of wrong keys
from one address: each gets the right 4xx in the client's envelope, fast, and none of it fills the
ledger, the audit trail or the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from gateway_support import GatewayFactory

from ccrouter.auth.keys import AuditRecord, KeyRecord, hash_secret, new_secret
from ccrouter.config import Settings
from ccrouter.store.sqlite import SQLiteStore
from ccrouter.testing import FakeUpstream

ADMIN = "admin-token-0123456789"
GOOD = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "hi"}]}


def _settings(fake_url: str, ledger: Path) -> Settings:
    return Settings.model_validate(
        {
            "server": {"require_auth": True, "admin_token": ADMIN, "keys": {"poll_s": 0.1}},
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
            "store": {"url": f"sqlite:///{ledger}", "flush_interval_s": 0.05},
        }
    )


def _key(secret: str, **fields: Any) -> KeyRecord:
    return KeyRecord(
        id=f"key_{hash_secret(secret)[:16]}",
        name=fields.pop("name", "alice"),
        hash=hash_secret(secret),
        prefix=secret[:8],
        created_at=time.time(),
        **fields,
    )


async def _seed(ledger: Path, *records: KeyRecord) -> None:
    store = SQLiteStore(ledger)
    await store.open()
    try:
        for record in records:
            await store.key_insert(record)
    finally:
        await store.close()


async def _send(
    session: aiohttp.ClientSession, url: str, key: str | None, path: str = "/v1/messages"
) -> tuple[int, dict[str, Any], dict[str, str]]:
    headers = {"x-api-key": key} if key is not None else {}
    body = CHAT if path == "/v1/chat/completions" else GOOD
    if path == "/v1/chat/completions" and key is not None:
        headers = {"authorization": f"Bearer {key}"}
    async with session.post(url + path, json=body, headers=headers) as response:
        return response.status, orjson.loads(await response.read()), dict(response.headers)


async def _audit(ledger: Path) -> list[AuditRecord]:
    store = SQLiteStore(ledger)
    await store.open()
    try:
        return await store.audit_list(limit=10_000)
    finally:
        await store.close()


async def test_revoked_expired_and_malformed_keys_are_refused_in_the_clients_envelope(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    ledger = tmp_path / "usage.db"
    good, revoked, expired = new_secret(), new_secret(), new_secret()
    await _seed(
        ledger,
        _key(good),
        _key(revoked, name="bob", revoked_at=time.time() - 1),
        _key(expired, name="carol", expires_at=time.time() - 1),
    )
    url = await gateway(_settings(fake.url, ledger))
    async with aiohttp.ClientSession() as session:
        assert (await _send(session, url, good))[0] == 200
        cases = {
            revoked: "revoked",
            expired: "expired",
            good[:-1] + ("A" if good[-1] != "A" else "B"): "invalid API key",  # one character off
            "ccr-": "invalid API key",
            "ccr-" + "x" * 4000: "invalid API key",
            "ccr-\u00e9\u00e9\u00e9" + "a" * 40: "invalid API key",  # not ASCII
            "not-a-key": "invalid API key",
        }
        for presented, said in cases.items():
            for path in ("/v1/messages", "/v1/chat/completions"):
                status, body, _ = await _send(session, url, presented, path)
                assert status == 401, (presented[:12], path, body)
                if path == "/v1/messages":
                    assert body["type"] == "error"
                    assert body["error"]["type"] == "authentication_error"
                    message = body["error"]["message"]
                else:
                    assert body["error"]["type"] == "authentication_error"
                    assert "code" in body["error"]  # OpenAI's envelope
                    message = body["error"]["message"]
                assert said in message
                assert presented not in message
        # An unknown role in a key's data never reaches a request: the API and the config refuse it
        # (their own tests); a header far beyond the line limit is a 431 before any lookup.
        async with session.post(url + "/v1/messages", json=GOOD, headers={"x-api-key": "k" * 20_000}) as r:
            assert r.status == 431
    # Only the served request is in the ledger (once the writer's interval has passed).
    await asyncio.sleep(0.2)
    store = SQLiteStore(ledger)
    await store.open()
    try:
        rows = await store.records()
    finally:
        await store.close()
    assert [row.status for row in rows] == [200]


async def test_a_flood_of_wrong_keys_is_answered_fast_and_fills_nothing(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = tmp_path / "usage.db"
    good = new_secret()
    await _seed(ledger, _key(good))
    url = await gateway(_settings(fake.url, ledger))
    statuses: list[int] = []
    connector = aiohttp.TCPConnector(limit=50)
    with caplog.at_level(logging.INFO):
        async with aiohttp.ClientSession(connector=connector) as session:
            # The working key succeeds from this address first: it is never slowed by the flood.
            assert (await _send(session, url, good))[0] == 200
            started = time.perf_counter()

            async def wrong(i: int, path: str) -> None:
                key = new_secret() if i % 2 else f"wrong-{i}"
                statuses.append((await _send(session, url, key, path))[0])

            await asyncio.gather(*(wrong(i, "/v1/messages") for i in range(500)))
            await asyncio.gather(*(wrong(i, "/api/usage") for i in range(500)))
            elapsed = time.perf_counter() - started
            assert (await _send(session, url, good))[0] == 200
    assert set(statuses) <= {401, 429}
    assert statuses.count(429) > 900  # the throttle answers almost all of them
    assert elapsed < 10, elapsed  # 1,000 refusals, each a dictionary lookup (generous for CI)
    # Nothing filled: two ledger rows (the two good requests), at most one audit row for the
    # address this minute, at most one log line about it.
    await asyncio.sleep(0.2)
    store = SQLiteStore(ledger)
    await store.open()
    try:
        rows = await store.records()
    finally:
        await store.close()
    assert len(rows) == 2
    failed = [row for row in await _audit(ledger) if row.action == "auth.failed"]
    assert len(failed) == 1, failed
    assert failed[0].address is not None
    lines = [r.getMessage() for r in caplog.records if r.name == "ccrouter.auth"]
    assert len(lines) <= 1, lines
    for record in caplog.records:
        assert "ccr-" not in record.getMessage()
