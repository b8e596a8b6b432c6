"""A provider key rotated at its source while requests keep coming, through the real app over real
HTTP: a ``${file:...}`` key rewritten and the reload asked for (``POST /api/config/reload``), and a
``${vault:...}`` key given a new version that the refresh task (``secrets.refresh_s``) notices. The
upstream accepts the new key just before the rotation and refuses the old one soon after: no request
fails, requests in flight finish on the old key, and later ones carry the new key."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer

from ccrouter.app import create_app
from ccrouter.config_file import load_settings
from ccrouter.testing import FakeUpstream, Reply
from ccrouter.testing.script import RecordedRequest
from ccrouter.testing.vault import FakeVault

ADMIN = "admin-token-for-rotation-tests"
VAULT_TOKEN = "hvs.rotation-test-token"
MODEL = "claude-sonnet-4-6"
BODY = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
OLD, NEW = "sk-ant-old-key-0001", "sk-ant-new-key-0002"


def _slow(record: RecordedRequest) -> Reply:
    # Five frames 30 ms apart: some requests are still streaming when the key changes.
    return Reply(text="y" * 40, chunk_size=8, chunk_delay=0.03)


def _config(tmp_path: Path, api_key: str, refresh_s: float) -> dict[str, Any]:
    return {
        "server": {"admin_token": ADMIN},
        "providers": [
            {"name": "up", "type": "anthropic", "base_url": "", "api_key": api_key, "models": [MODEL]}
        ],
        "router": {"default": f"up,{MODEL}"},
        "store": {"url": f"sqlite:///{tmp_path / 'usage.db'}"},
        "alerts": {"enabled": False},
        "secrets": {"refresh_s": refresh_s},
    }


def _replace(path: Path, text: str) -> None:
    """Rewrite a file as a secret manager does: a temporary renamed over it."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream(default=_slow, api_key=OLD) as fake:
        yield fake


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Callable[[dict[str, Any]], Awaitable[TestServer]]]:
    servers: list[TestServer] = []

    async def start(data: dict[str, Any]) -> TestServer:
        path = tmp_path / "config.yaml"
        await asyncio.to_thread(_replace, path, yaml.safe_dump(data, sort_keys=False))
        # The first load resolves the references off the loop too (the fake Vault serves on it).
        settings = await asyncio.to_thread(load_settings, path)
        server = TestServer(create_app(settings, config_path=path, watch=False), host="127.0.0.1", port=0)
        await server.start_server()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


class _Load:
    """Requests every 15 ms, half streamed, until stopped: each one's status and start time."""

    def __init__(self, session: aiohttp.ClientSession, server: TestServer) -> None:
        self._session, self._server = session, server
        self.results: list[tuple[int, float]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._running = True

    async def _one(self, stream: bool) -> None:
        started = time.monotonic()
        body = {**BODY, "stream": stream}
        async with self._session.post(self._server.make_url("/v1/messages"), json=body) as response:
            text = await response.read()
            ok = response.status == 200 and (not stream or b"message_stop" in text)
        self.results.append((200 if ok else response.status, started))

    async def run(self) -> None:
        i = 0
        while self._running:
            self._tasks.append(asyncio.create_task(self._one(stream=i % 2 == 0)))
            i += 1
            await asyncio.sleep(0.015)

    async def stop(self) -> None:
        self._running = False
        await asyncio.gather(*self._tasks)


async def _until(condition: Callable[[], bool], limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {limit_s} s")
        await asyncio.sleep(0.02)


def _keys(upstream: FakeUpstream) -> list[str]:
    return [record.headers.get("x-api-key", "") for record in upstream.requests]


async def _rotate_under_load(
    server: TestServer, upstream: FakeUpstream, rotate: Callable[[aiohttp.ClientSession], Awaitable[None]]
) -> tuple[list[tuple[int, float]], float, list[str]]:
    """Run the load, rotate the key half a second in, and refuse the old key once the new one is
    seen; return every request's result, when the old key was refused, and the keys the upstream saw."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        load = _Load(session, server)
        runner = asyncio.create_task(load.run())
        await asyncio.sleep(0.5)
        upstream.accept_keys(OLD, NEW)  # the provider accepts the new key just before the rotation
        await rotate(session)
        await _until(lambda: NEW in _keys(upstream), limit_s=5.0)
        await asyncio.sleep(0.3)  # requests that started on the old key finish on it
        upstream.accept_keys(NEW)
        refused_at = time.monotonic()
        await asyncio.sleep(0.5)
        await load.stop()
        await runner
    return load.results, refused_at, _keys(upstream)


def _check(results: list[tuple[int, float]], refused_at: float, keys: list[str]) -> None:
    failed = [status for status, _ in results if status != 200]
    assert not failed, f"{len(failed)} of {len(results)} requests failed: {failed[:5]}"
    assert len(results) > 40
    assert sum(1 for _, started in results if started > refused_at) > 10
    # Every upstream call used a key the upstream accepted then (a refused one would have failed its
    # request: no retry hides it, one call per request): the old key first, then the new one.
    assert len(keys) == len(results)
    assert set(keys) == {OLD, NEW}
    assert keys[0] == OLD
    assert keys[-10:] == [NEW] * 10


async def test_a_rewritten_key_file_and_a_reload_rotate_without_a_failed_request(
    tmp_path: Path, upstream: FakeUpstream, serve: Callable[[dict[str, Any]], Awaitable[TestServer]]
) -> None:
    key = tmp_path / "anthropic-key"
    await asyncio.to_thread(key.write_text, OLD + "\n")
    data = _config(tmp_path, f"${{file:{key}}}", refresh_s=0)  # 0: only the reload reads it again
    data["providers"][0]["base_url"] = upstream.url
    server = await serve(data)

    async def rotate(session: aiohttp.ClientSession) -> None:
        await asyncio.to_thread(_replace, key, NEW + "\n")
        url = server.make_url("/api/config/reload")
        async with session.post(url, headers={"authorization": f"Bearer {ADMIN}"}) as response:
            assert response.status == 200
            assert (await response.json())["status"] == "reloaded"

    results, refused_at, keys = await _rotate_under_load(server, upstream, rotate)
    _check(results, refused_at, keys)


async def test_a_new_vault_version_is_picked_up_by_the_refresh(
    tmp_path: Path,
    upstream: FakeUpstream,
    serve: Callable[[dict[str, Any]], Awaitable[TestServer]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with FakeVault(token=VAULT_TOKEN) as vault:
        vault.put("ccrouter/anthropic", {"api_key": OLD})
        monkeypatch.setenv("VAULT_ADDR", vault.url)
        monkeypatch.setenv("VAULT_TOKEN", VAULT_TOKEN)
        data = _config(tmp_path, "${vault:ccrouter/anthropic#api_key}", refresh_s=0.2)
        data["providers"][0]["base_url"] = upstream.url
        server = await serve(data)

        async def rotate(session: aiohttp.ClientSession) -> None:
            vault.put("ccrouter/anthropic", {"api_key": NEW})

        results, refused_at, keys = await _rotate_under_load(server, upstream, rotate)
        reads = vault.reads("ccrouter/anthropic")
        await server.close()
    _check(results, refused_at, keys)
    # One read per load and per refresh round (every 0.2 s for about 2 s), not one per request.
    assert 3 <= reads <= 25
    assert all(call.status == 200 for call in vault.calls)


async def test_a_vault_that_refuses_the_refresh_leaves_the_running_key(
    tmp_path: Path,
    upstream: FakeUpstream,
    serve: Callable[[dict[str, Any]], Awaitable[TestServer]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with FakeVault(token=VAULT_TOKEN) as vault:
        vault.put("ccrouter/anthropic", {"api_key": OLD})
        monkeypatch.setenv("VAULT_ADDR", vault.url)
        monkeypatch.setenv("VAULT_TOKEN", VAULT_TOKEN)
        data = _config(tmp_path, "${vault:ccrouter/anthropic#api_key}", refresh_s=0.2)
        data["providers"][0]["base_url"] = upstream.url
        server = await serve(data)
        await _until(lambda: vault.reads("ccrouter/anthropic") >= 3, limit_s=3.0)  # refreshing
        vault.put("ccrouter/anthropic", {"api_key": NEW})
        vault.revoke(VAULT_TOKEN)  # the token expired: no refresh can read the new version
        failed = len([call for call in vault.calls if call.status == 403])
        await _until(lambda: len([c for c in vault.calls if c.status == 403]) >= failed + 2, limit_s=3.0)
        async with (
            aiohttp.ClientSession() as session,
            session.post(server.make_url("/v1/messages"), json=BODY) as response,
        ):
            assert response.status == 200
        await server.close()
    assert _keys(upstream) == [OLD]
    refused = [r.getMessage() for r in caplog.records if "re-reading the secrets failed" in r.getMessage()]
    assert refused
    assert "permission denied" in refused[0]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert VAULT_TOKEN not in logged
    assert NEW not in logged
    assert OLD not in logged
