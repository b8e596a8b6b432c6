"""Live configuration through the real app over real HTTP: the gateway watches its config file,
reloads on ``POST /api/config/reload``, swaps the services without failing a request in flight,
keeps the pools and the live state of what did not change, and shows its configuration masked."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml
from aiohttp.test_utils import TestServer

from ccrouter.api.state import GATEWAY
from ccrouter.app import create_app
from ccrouter.config_file import load_settings
from ccrouter.providers.http import HttpProvider
from ccrouter.reload import Gateway
from ccrouter.testing import FakeUpstream, Fault, Reply
from ccrouter.testing.script import RecordedRequest

ADMIN = "admin-token-for-reload-tests"
MODEL = "claude-sonnet-4-6"
BODY = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
STREAM = {**BODY, "stream": True}
VERSION = "x-ccrouter-config-version"


def _slow(record: RecordedRequest) -> Reply:
    # Ten frames 20 ms apart: a stream is still running when the file changes.
    return Reply(text="x" * 80, chunk_size=8, chunk_delay=0.02)


def _provider(name: str, url: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": "anthropic",
        "base_url": url,
        "api_key": f"sk-{name}-key",
        "models": [MODEL],
    }


def _config(tmp_path: Path, providers: list[dict[str, Any]], default: str, **extra: Any) -> dict[str, Any]:
    return {
        "server": {"admin_token": ADMIN},
        "providers": providers,
        "router": {"default": f"{default},{MODEL}"},
        "store": {"url": f"sqlite:///{tmp_path / 'usage.db'}"},
        "alerts": {"enabled": False},
        **extra,
    }


def _write(path: Path, data: dict[str, Any] | str) -> None:
    """Write as an editor does: a temporary file renamed over the config."""
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
    tmp = path.with_name(".config.yaml.swp")
    tmp.write_text(text)
    tmp.replace(path)


@pytest.fixture
async def upstreams() -> AsyncIterator[tuple[FakeUpstream, FakeUpstream]]:
    async with FakeUpstream(default=_slow) as a, FakeUpstream(default=_slow) as b:
        yield a, b


Started = Callable[..., Any]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Callable[[dict[str, Any]], Any]]:
    """Write the config and start the real app from it (``watch``: reload when the file changes)."""
    servers: list[TestServer] = []

    async def start(data: dict[str, Any], *, watch: bool = True) -> tuple[TestServer, Path]:
        path = tmp_path / "config.yaml"
        _write(path, data)
        app = create_app(load_settings(path), config_path=path, watch=watch)
        server = TestServer(app, host="127.0.0.1", port=0)
        await server.start_server()
        servers.append(server)
        return server, path

    yield start
    for server in servers:
        await server.close()


def _admin() -> dict[str, str]:
    return {"authorization": f"Bearer {ADMIN}"}


async def _version(session: aiohttp.ClientSession, server: TestServer) -> str:
    async with session.get(server.make_url("/health")) as response:
        return response.headers[VERSION]


async def _until_version_changes(
    session: aiohttp.ClientSession, server: TestServer, old: str, limit_s: float = 2.0
) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        if await _version(session, server) != old:
            return time.monotonic() - started
        await asyncio.sleep(0.02)
    pytest.fail(f"the configuration did not change within {limit_s} s")


async def _call(session: aiohttp.ClientSession, server: TestServer, stream: bool) -> tuple[str, float, float]:
    """One request: (the provider that served it, when it started, when it ended)."""
    started = time.monotonic()
    async with session.post(server.make_url("/v1/messages"), json=STREAM if stream else BODY) as response:
        body = await response.read()
        assert response.status == 200, body
        if stream:
            assert body.rstrip().endswith(b'data: {"type":"message_stop"}'), body[-200:]
        else:
            assert orjson.loads(body)["content"][0]["text"] == "x" * 80
        return response.headers["x-ccrouter-provider"], started, time.monotonic()


async def test_editing_the_file_under_load_moves_the_default_route_and_drops_nothing(
    tmp_path: Path, upstreams: tuple[FakeUpstream, FakeUpstream], served: Started
) -> None:
    a, b = upstreams
    providers = [_provider("a", a.url), _provider("b", b.url)]
    server, path = await served(_config(tmp_path, providers, "a"))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        before = await _version(session, server)

        async def later(i: int) -> tuple[str, float, float]:
            await asyncio.sleep(i * 0.015)  # 200 requests arriving over 3 s, half of them streamed
            return await _call(session, server, stream=i % 2 == 0)

        load = [asyncio.create_task(later(i)) for i in range(200)]
        await asyncio.sleep(0.5)
        edited = time.monotonic()
        _write(path, _config(tmp_path, providers, "b"))
        took = await _until_version_changes(session, server, before)
        swapped = edited + took
        results = await asyncio.gather(*load)  # every request succeeded (asserted in _call)
        # An invalid edit is refused: the running configuration keeps serving.
        _write(path, _config(tmp_path, providers, "nope"))
        await asyncio.sleep(1.0)
        after = await _version(session, server)
        served_by, _, _ = await _call(session, server, stream=True)
        async with session.get(server.make_url("/api/config"), headers=_admin()) as response:
            shown = await response.json()
    assert took < 2.0
    assert len(results) == 200
    assert {p for p, started, _ in results if started < edited} == {"a"}
    assert {p for p, started, _ in results if started > swapped} == {"b"}
    # Requests that started on the old configuration finished on it after the swap.
    assert any(p == "a" and ended > swapped for p, _, ended in results)
    assert after != before
    assert served_by == "b"
    assert shown["version"] == after
    assert shown["last_reload"]["status"] == "refused"
    assert "router.default" in shown["last_reload"]["error"]


async def test_reload_endpoint_needs_the_admin_token_and_reports_errors(
    tmp_path: Path, upstreams: tuple[FakeUpstream, FakeUpstream], served: Started
) -> None:
    a, b = upstreams
    data = _config(tmp_path, [_provider("a", a.url)], "a")
    server, path = await served(data, watch=False)  # this test triggers every reload itself
    gateway: Gateway = server.app[GATEWAY]
    url = server.make_url("/api/config/reload")
    async with aiohttp.ClientSession() as session:
        async with session.post(url) as response:
            assert response.status == 401
        async with session.post(url, headers={"authorization": "Bearer wrong"}) as response:
            assert response.status == 401
        async with session.post(url, headers=_admin()) as response:
            assert response.status == 200
            assert (await response.json())["status"] == "unchanged"
        bad = {**data, "providers": [{**_provider("a", a.url), "timeouts": {"connect_s": "soon"}}]}
        _write(path, bad)
        async with session.post(url, headers=_admin()) as response:
            assert response.status == 422
            refused = await response.json()
        assert refused["error"]["type"] == "invalid_request_error"
        assert "providers[0].timeouts.connect_s" in refused["error"]["message"]
        assert refused["reload"]["status"] == "refused"
        _write(path, "providers: [unclosed")
        async with session.post(url, headers=_admin()) as response:
            assert response.status == 422
            assert "YAML syntax error" in (await response.json())["error"]["message"]
        # A valid change applies; one that needs a restart is named and keeps its running value.
        moved = {**data, "server": {"admin_token": ADMIN, "port": 4567}, "router": {"default": f"a,{MODEL}"}}
        moved["providers"] = [_provider("a", a.url), _provider("b", b.url)]
        moved["router"]["background"] = f"b,{MODEL}"
        _write(path, moved)
        async with session.post(url, headers=_admin()) as response:
            assert response.status == 200
            result = await response.json()
        assert result["status"] == "reloaded"
        assert result["restart_required"] == ["server.port"]
        assert response.headers[VERSION] == result["previous_version"]  # served before the swap
        assert gateway.current.settings.server.port == 3456
        assert gateway.current.settings.router.background == f"b,{MODEL}"
        async with session.post(server.make_url("/v1/messages"), json=BODY) as response:
            assert response.status == 200
            assert response.headers[VERSION] == result["version"]


async def test_config_endpoint_masks_every_secret(tmp_path: Path, served: Started) -> None:
    async with FakeUpstream() as fake:
        secrets = [
            "sk-ant-api03-first-provider-key-0123456789",
            "sk-ant-api03-second-pool-key-9876543210",
            "client-key-abcdefghijklmnop",
            "hookpassword-123456",
            "basic-auth-password-42",
            "header-token-value-xyz",
        ]
        provider = {
            **_provider("a", fake.url.replace("http://", "http://user:basic-auth-password-42@")),
            "api_key": secrets[0],
            "api_keys": [secrets[1]],
            "headers": {"x-extra-auth": "header-token-value-xyz"},
        }
        data = _config(tmp_path, [provider], "a")
        data["server"]["api_keys"] = [{"name": "team", "key": secrets[2]}]
        data["alerts"] = {"enabled": True, "webhook_url": f"https://hooks:{secrets[3]}@hooks.example/alert"}
        server, _ = await served(data)
        async with aiohttp.ClientSession() as session:
            async with session.get(server.make_url("/api/config"), headers=_admin()) as response:
                assert response.status == 200
                text = await response.text()
            async with session.get(server.make_url("/api/config")) as response:
                assert response.status == 401
                assert VERSION in response.headers  # every response carries it, refusals too
            async with session.get(server.make_url("/no/such/page")) as response:
                assert response.status == 404
                assert VERSION in response.headers
    for secret in [*secrets, ADMIN]:
        assert secret not in text
    shown = orjson.loads(text)
    assert shown["version"] == server.app[GATEWAY].current.version
    assert shown["loaded_at"].endswith("Z")
    settings = shown["settings"]
    assert settings["providers"][0]["base_url"].startswith("http://user:********@127.0.0.1:")
    assert settings["providers"][0]["headers"] == {"x-extra-auth": "********"}
    assert settings["alerts"]["webhook_url"] == "https://hooks:********@hooks.example/alert"
    assert settings["server"]["api_keys"][0]["name"] == "team"


async def test_unchanged_pools_are_kept_and_removed_ones_closed_after_their_last_request(
    tmp_path: Path, upstreams: tuple[FakeUpstream, FakeUpstream], served: Started
) -> None:
    a, b = upstreams
    data = _config(tmp_path, [_provider("a", a.url), _provider("b", b.url)], "a")
    server, path = await served(data, watch=False)
    gateway: Gateway = server.app[GATEWAY]
    kept = next(iter(gateway.current.pools["a"].values()))
    removed = next(iter(gateway.current.pools["b"].values()))
    assert isinstance(kept, HttpProvider)
    assert isinstance(removed, HttpProvider)
    b.script(Reply(text="y" * 400, chunk_size=8, chunk_delay=0.02))  # a 1 s stream on b
    async with aiohttp.ClientSession() as session:
        body = {**STREAM, "model": f"b,{MODEL}"}
        async with session.post(server.make_url("/v1/messages"), json=body) as response:
            assert response.status == 200
            first = await response.content.readany()
            _write(path, _config(tmp_path, [_provider("a", a.url)], "a"))
            result = await gateway.reload()
            assert result.status == "reloaded"
            assert not removed._session.closed  # its last request is still streaming
            rest = await response.read()
        assert (first + rest).rstrip().endswith(b'data: {"type":"message_stop"}')
        for _ in range(100):
            if removed._session.closed:
                break
            await asyncio.sleep(0.02)
        assert removed._session.closed
        assert next(iter(gateway.current.pools["a"].values())) is kept
        assert not kept._session.closed
        async with session.post(server.make_url("/v1/messages"), json=BODY) as response:
            assert response.status == 200
    assert len(a.requests) == 1


async def test_breaker_and_cooldown_of_a_kept_provider_survive_a_reload(
    tmp_path: Path, upstreams: tuple[FakeUpstream, FakeUpstream], served: Started
) -> None:
    a, b = upstreams
    routing = {"breaker": {"consecutive_failures": 1, "open_s": 600}}
    data = _config(tmp_path, [_provider("a", a.url), _provider("b", b.url)], "a", routing=routing)
    server, path = await served(data, watch=False)
    gateway: Gateway = server.app[GATEWAY]
    a.script(Fault("status", status=500))
    b.script(Fault("status", status=429, retry_after=600))
    async with aiohttp.ClientSession() as session:
        async with session.post(server.make_url("/v1/messages"), json=BODY) as response:
            # a fails (its breaker opens), b is rate limited (cooling down 600 s): no one is left.
            assert response.status >= 400, await response.text()
        data["providers"].append(_provider("c", a.url))
        data["router"]["background"] = f"c,{MODEL}"
        _write(path, data)
        assert (await gateway.reload()).status == "reloaded"
        async with session.get(server.make_url("/health/providers")) as response:
            rows = {row["provider"]: row for row in (await response.json())["providers"]}
    assert rows["a"]["breaker"] == "open"
    assert rows["b"]["cooldown_s"] > 500
    assert rows["c"]["breaker"] == "closed"
    assert rows["c"]["cooldown_s"] == 0


PLUGIN = """
from ccrouter.hookspecs import hookimpl


class Counting:
    def __init__(self):
        self.seen = 0

    def on_exchange(self, exchange):
        self.seen += 1


@hookimpl
def register_observers(register, context):
    register(Counting())
"""


async def test_a_reload_loads_the_plugins_the_new_file_names_or_refuses_it_whole(
    tmp_path: Path, upstreams: tuple[FakeUpstream, FakeUpstream], served: Started
) -> None:
    a, _ = upstreams
    data = _config(tmp_path, [_provider("a", a.url)], "a")
    server, path = await served(data, watch=False)
    gateway: Gateway = server.app[GATEWAY]
    running = gateway.current.version
    url = server.make_url("/api/config/reload")
    async with aiohttp.ClientSession() as session:
        _write(path, {**data, "plugins": ["no_such_plugin_module_for_reload"]})
        async with session.post(url, headers=_admin()) as response:
            assert response.status == 422
            message = (await response.json())["error"]["message"]
        assert "no_such_plugin_module_for_reload" in message
        assert gateway.current.version == running
        await asyncio.to_thread((tmp_path / "counting.py").write_text, PLUGIN)
        _write(path, {**data, "plugins": ["counting.py"]})
        async with session.post(url, headers=_admin()) as response:
            assert response.status == 200
            assert (await response.json())["status"] == "reloaded"
        counting = [o for o in gateway.current.observers if type(o).__name__ == "Counting"]
        assert len(counting) == 1
        async with session.post(server.make_url("/v1/messages"), json=BODY) as response:
            assert response.status == 200
        await asyncio.sleep(0.05)  # observers are told once the response is on its way
    assert counting[0].seen == 1


async def test_a_rotated_key_is_a_change_that_reaches_the_provider(
    tmp_path: Path, upstreams: tuple[FakeUpstream, FakeUpstream], served: Started
) -> None:
    a, _ = upstreams
    data = _config(tmp_path, [_provider("a", a.url)], "a")
    server, path = await served(data, watch=False)
    gateway: Gateway = server.app[GATEWAY]
    before = gateway.current.version
    _write(path, {**data, "providers": [{**_provider("a", a.url), "api_key": "sk-a-rotated-key"}]})
    result = await gateway.reload()
    assert result.status == "reloaded"
    assert result.version != before
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.make_url("/v1/messages"), json=BODY) as response,
    ):
        assert response.status == 200
    assert a.requests[-1].headers["x-api-key"] == "sk-a-rotated-key"


async def test_a_reload_brings_the_new_routes_aliases(
    tmp_path: Path, upstreams: tuple[FakeUpstream, FakeUpstream], served: Started
) -> None:
    a, b = upstreams
    server, path = await served(_config(tmp_path, [_provider("a", a.url)], "a"), watch=False)
    gateway: Gateway = server.app[GATEWAY]
    headers = {"anthropic-version": "2023-06-01"}
    async with aiohttp.ClientSession() as session:
        async with session.get(server.make_url("/v1/models"), headers=headers) as response:
            assert [m["id"] for m in (await response.json())["data"]] == [f"claude-ccr-a-{MODEL}"]
        _write(path, _config(tmp_path, [_provider("a", a.url), _provider("b", b.url)], "a"))
        assert (await gateway.reload()).status == "reloaded"
        async with session.get(server.make_url("/v1/models"), headers=headers) as response:
            ids = [m["id"] for m in (await response.json())["data"]]
        assert ids == [f"claude-ccr-a-{MODEL}", f"claude-ccr-b-{MODEL}"]
        body = {**BODY, "model": f"claude-ccr-b-{MODEL}"}
        async with session.post(server.make_url("/v1/messages"), json=body) as response:
            assert response.status == 200
            assert response.headers["x-ccrouter-provider"] == "b"
    assert len(b.requests) == 1
