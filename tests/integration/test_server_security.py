"""What an attacker who can reach the port can and cannot do (issue 11, Security 2, 3, 4, 8): compressed
bodies are inflated only after authentication and within the body limit, rejected requests leave no
ledger rows and bounded metric labels, failed authentication is throttled per address, and the
observability endpoints need the admin token when the gateway listens beyond loopback."""

from __future__ import annotations

import asyncio
import functools
import gzip
import logging
import time
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import brotli
import orjson
import pytest
from backports import zstd
from gateway_support import GatewayFactory, keyed_settings

from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream, Reply

KEY = "client-key-0123456789"
ADMIN = "admin-token-0123456789"
GOOD = {"model": "claude-sonnet-4-6", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}


def _settings(fake_url: str, tmp_path: Path, **server: Any) -> Settings:
    return keyed_settings(fake_url, tmp_path, KEY, **{"admin_token": ADMIN, **server})


async def _post(
    url: str, body: bytes, headers: dict[str, str], path: str = "/v1/messages"
) -> tuple[int, dict[str, str], Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + path, data=body, headers={"content-type": "application/json", **headers}) as r,
    ):
        raw = await r.read()
        return r.status, dict(r.headers), orjson.loads(raw) if raw else None


async def _get(url: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url + path, headers=headers or {}) as r:
        return r.status, await r.read()


def _anthropic(body: Any) -> tuple[str, str]:
    assert body["type"] == "error", body
    return body["error"]["type"], body["error"]["message"]


# -- item 2: compressed request bodies ---------------------------------------------------------------


@functools.cache
def _bomb() -> bytes:
    """About 260 KB of gzip that inflate to 256 MB of zeros (RLE: quick to make)."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS, strategy=zlib.Z_RLE)
    zeros = bytes(1 << 20)
    return b"".join([*(deflater.compress(zeros) for _ in range(256)), deflater.flush()])


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("br", brotli.compress),
        ("zstd", zstd.compress),
        ("gzip, br", lambda data: brotli.compress(gzip.compress(data))),
    ],
)
async def test_compressed_bodies_are_inflated_for_an_authenticated_client(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path, encoding: str, compress: Any
) -> None:
    fake.script(Reply(text="inflated"))
    url = await gateway(_settings(fake.url, tmp_path))
    status, _, body = await _post(
        url, compress(orjson.dumps(GOOD)), {"x-api-key": KEY, "content-encoding": encoding}
    )
    assert status == 200, body
    assert body["content"][0]["text"] == "inflated"


async def test_an_unsupported_encoding_is_415_in_the_clients_envelope(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    url = await gateway(_settings(fake.url, tmp_path))
    status, _, body = await _post(url, b"whatever", {"x-api-key": KEY, "content-encoding": "compress"})
    assert status == 415
    assert _anthropic(body)[0] == "invalid_request_error"
    status, _, body = await _post(
        url, b"whatever", {"x-api-key": KEY, "content-encoding": "lzma"}, path="/v1/chat/completions"
    )
    assert status == 415
    assert "lzma" in body["error"]["message"]


async def test_a_bomb_is_413_on_its_inflated_size(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    url = await gateway(_settings(fake.url, tmp_path, max_body_bytes=1024 * 1024))
    status, _, body = await _post(url, _bomb(), {"x-api-key": KEY, "content-encoding": "gzip"})
    assert status == 413
    assert _anthropic(body)[0] == "request_too_large"
    assert "max_body_bytes" in _anthropic(body)[1]


async def test_a_bomb_without_a_key_is_refused_before_inflating_and_stalls_nobody(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    url = await gateway(_settings(fake.url, tmp_path))
    bomb = _bomb()

    async def health_latency() -> float:
        await asyncio.sleep(0.05)  # while the bomb is being received
        started = time.perf_counter()
        status, _ = await _get(url, "/health")
        assert status == 200
        return time.perf_counter() - started

    started = time.perf_counter()
    (status, _, body), latency = await asyncio.gather(
        _post(url, bomb, {"content-encoding": "gzip"}), health_latency()
    )
    assert status == 401
    assert _anthropic(body)[0] == "authentication_error"
    assert time.perf_counter() - started < 1.0
    assert latency < 0.3


async def test_an_authenticated_bomb_is_inflated_in_steps_that_stall_nobody(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    url = await gateway(_settings(fake.url, tmp_path, max_body_bytes=64 * 1024 * 1024))
    bomb = _bomb()

    async def health_latencies() -> list[float]:
        latencies = []
        for _ in range(10):
            await asyncio.sleep(0.02)
            started = time.perf_counter()
            status, _ = await _get(url, "/health")
            assert status == 200
            latencies.append(time.perf_counter() - started)
        return latencies

    (status, _, body), latencies = await asyncio.gather(
        _post(url, bomb, {"x-api-key": KEY, "content-encoding": "gzip"}), health_latencies()
    )
    assert status == 413
    assert "inflates" in _anthropic(body)[1]
    assert max(latencies) < 0.3, latencies


async def test_a_truncated_body_is_400(fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path) -> None:
    url = await gateway(_settings(fake.url, tmp_path))
    for encoding, data in (("gzip", gzip.compress(orjson.dumps(GOOD))[:-12]), ("br", b"\xff\xff\xff")):
        status, _, body = await _post(url, data, {"x-api-key": KEY, "content-encoding": encoding})
        assert status == 400, (encoding, body)
        assert encoding in _anthropic(body)[1]


# -- item 3: rejected requests leave no ledger rows ----------------------------------------------------


async def _ledger_rows(url: str) -> list[dict[str, Any]]:
    status, raw = await _get(url, "/api/usage?by=endpoint", {"authorization": f"Bearer {ADMIN}"})
    assert status == 200, raw
    rows: list[dict[str, Any]] = orjson.loads(raw)["rows"]
    return rows


async def test_rejected_requests_are_counted_not_stored(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    url = await gateway(_settings(fake.url, tmp_path, auth_throttle_burst=1000))
    long_path = "/v1/" + "x" * 3000
    for _ in range(50):
        status, _, _ = await _post(url, b"{}", {"x-api-key": "wrong"}, path=long_path)
        assert status == 401
    for _ in range(5):
        status, _, _ = await _post(url, b"{}", {}, path=long_path)
        assert status == 401
    assert await _ledger_rows(url) == []
    status, raw = await _get(url, "/metrics")
    text = raw.decode()
    assert status == 200
    assert 'ccr_auth_failures_total{reason="invalid_key"} 50.0' in text
    assert 'ccr_auth_failures_total{reason="missing_key"} 5.0' in text
    assert "x" * 100 not in text

    # An authenticated client on an unknown path: one row, under "other", never the raw path.
    status, _, _ = await _post(url, b"{}", {"x-api-key": KEY}, path=long_path)
    assert status == 404
    rows = await _ledger_rows(url)
    assert [(row["endpoint"], row["requests"]) for row in rows] == [("other", 1)]


# -- item 4: brute force -----------------------------------------------------------------------------


async def test_failed_authentication_is_throttled_per_address(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    url = await gateway(_settings(fake.url, tmp_path, auth_throttle_burst=5, auth_throttle_per_minute=6))
    for _ in range(5):
        status, _, _ = await _post(url, b"{}", {"x-api-key": "guess"})
        assert status == 401
    status, headers, body = await _post(url, b"{}", {"x-api-key": "guess"})
    assert status == 429
    assert _anthropic(body)[0] == "rate_limit_error"
    assert 1 <= int(headers["Retry-After"]) <= 10
    status, headers, body = await _post(url, b"{}", {"x-api-key": "guess"}, path="/v1/chat/completions")
    assert status == 429
    assert body["error"]["type"] == "rate_limit_exceeded"
    # While throttled the address gets no answer about any key, else 200 against 429 would tell a
    # guesser which guess was right at full speed.
    status, _, _ = await _post(url, orjson.dumps(GOOD), {"x-api-key": KEY})
    assert status == 429
    # The admin endpoints share the throttle.
    status, _ = await _get(url, "/api/usage", {"authorization": "Bearer guess"})
    assert status == 429


async def test_a_throttled_address_gets_a_try_back_soon_and_a_good_key_is_not_slowed(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    fake.script(Reply(text="welcome"), Reply(text="again"))
    url = await gateway(_settings(fake.url, tmp_path, auth_throttle_burst=3, auth_throttle_per_minute=300))
    for _ in range(3):
        assert (await _post(url, b"{}", {"x-api-key": "guess"}))[0] == 401
    assert (await _post(url, b"{}", {"x-api-key": "guess"}))[0] == 429
    await asyncio.sleep(0.25)  # one token back (300 a minute)
    for text in ("welcome", "again"):  # a success costs no token
        started = time.perf_counter()
        status, _, body = await _post(url, orjson.dumps(GOOD), {"x-api-key": KEY})
        assert status == 200, body
        assert body["content"][0]["text"] == text
        assert time.perf_counter() - started < 1.0


async def test_failed_admin_logins_are_logged_once_a_minute_per_address(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = await gateway(_settings(fake.url, tmp_path))
    with caplog.at_level(logging.WARNING, logger="ccrouter.auth"):
        for _ in range(10):
            status, _ = await _get(url, "/api/usage", {"authorization": "Bearer wrong-token"})
            assert status == 401
    lines = [r.getMessage() for r in caplog.records if r.name == "ccrouter.auth"]
    assert len(lines) == 1, lines
    assert "127.0.0.1" in lines[0]
    assert "wrong-token" not in lines[0]


# -- item 8: observability endpoints -------------------------------------------------------------------


async def test_metrics_and_provider_health_need_the_admin_token_beyond_loopback(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    url = await gateway(_settings(fake.url, tmp_path, host="0.0.0.0"))
    for path in ("/metrics", "/health/providers"):
        status, raw = await _get(url, path)
        assert status == 401, path
        assert b"sk-upstream" not in raw
        assert b"claude-sonnet" not in raw
        status, _ = await _get(url, path, {"authorization": f"Bearer {KEY}"})
        assert status == 403, path
        status, _ = await _get(url, path, {"authorization": f"Bearer {ADMIN}"})
        assert status == 200, path
    status, _ = await _get(url, "/health")
    assert status == 200


async def test_metrics_stay_open_on_loopback_unless_protected(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    open_url = await gateway(_settings(fake.url, tmp_path))
    assert (await _get(open_url, "/metrics"))[0] == 200
    assert (await _get(open_url, "/health/providers"))[0] == 200
    closed_url = await gateway(_settings(fake.url, tmp_path, protect_observability=True))
    assert (await _get(closed_url, "/metrics"))[0] == 401


async def test_a_key_that_worked_from_an_address_is_never_slowed_while_that_address_is_throttled(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    """Behind a shared address under attack, whoever already worked there goes on working; a correct
    key never seen from there is refused like a guess (no oracle for the guesser)."""
    fake.script(Reply(text="before"), Reply(text="during"))
    other = "other-client-key-0123456789"
    url = await gateway(
        _settings(
            fake.url, tmp_path, api_keys=[KEY, other], auth_throttle_burst=3, auth_throttle_per_minute=1
        )
    )
    status, _, body = await _post(url, orjson.dumps(GOOD), {"x-api-key": KEY})
    assert status == 200, body
    for _ in range(3):
        assert (await _post(url, b"{}", {"x-api-key": "guess"}))[0] == 401
    assert (await _post(url, b"{}", {"x-api-key": "guess"}))[0] == 429
    started = time.perf_counter()
    status, _, body = await _post(url, orjson.dumps(GOOD), {"x-api-key": KEY})
    assert status == 200, body
    assert body["content"][0]["text"] == "during"
    assert time.perf_counter() - started < 1.0
    status, headers, _ = await _post(url, orjson.dumps(GOOD), {"x-api-key": other})
    assert status == 429
    assert int({k.lower(): v for k, v in headers.items()}["retry-after"]) >= 1
