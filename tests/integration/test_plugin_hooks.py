"""Plugins through the real HTTP app: a response hook (the shipped example plugin, given by path in
``plugins:``), a provider type and an OpenAI vendor profile that a plugin registers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from ccrouter.api import config_api
from ccrouter.api.response_hooks import RESPONSE_HOOKS
from ccrouter.app import create_app
from ccrouter.config_file import load_settings
from ccrouter.testing import FakeUpstream, Fault, Reply

EXAMPLE = (
    Path(__file__).parents[2] / "examples/plugins/ccrouter-example-header/src/ccrouter_example_header.py"
)
BODY = {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}

Serve = Callable[[Path], Awaitable[TestServer]]


def _write(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Test setup: a file written before the gateway serves (tests/conftest.py lets it block)."""
    path.write_text(text, encoding=encoding)


def _config(tmp_path: Path, provider: str, plugins: list[str]) -> Path:
    path = tmp_path / "config.yaml"
    listed = "".join(f"  - {item}\n" for item in plugins)
    _write(
        path,
        f"providers:\n{provider}router:\n  default: up,claude-sonnet-4-6\n"
        + (f"plugins:\n{listed}" if plugins else ""),
        encoding="utf-8",
    )
    return path


def _anthropic(fake: FakeUpstream, kind: str = "anthropic") -> str:
    fields = f"name: up, type: {kind}, base_url: '{fake.url}', api_key: sk-test, models: [claude-sonnet-4-6]"
    return f"  - {{{fields}}}\n"


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Serve]:
    servers: list[TestServer] = []

    async def start(config: Path) -> TestServer:
        server = TestServer(create_app(load_settings(config), config_dir=tmp_path), host="127.0.0.1", port=0)
        await server.start_server()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


async def _headers(server: TestServer, path: str, **kwargs: object) -> tuple[int, dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.post(server.make_url(path), **kwargs) as response:
        await response.read()
        return response.status, dict(response.headers)


async def test_the_example_plugin_by_path_marks_every_messages_response(
    tmp_path: Path, fake: FakeUpstream, serve: Serve
) -> None:
    fake.script(Reply(text="hello"), Reply(text="streamed"), Fault("status", status=500))
    server = await serve(_config(tmp_path, _anthropic(fake), [str(EXAMPLE)]))
    answers = [
        await _headers(server, "/v1/messages", json=BODY),
        await _headers(server, "/v1/messages", json={**BODY, "stream": True}),
        await _headers(server, "/v1/messages", json=BODY),  # the upstream fails
        await _headers(server, "/v1/messages", data=b"{not json"),
    ]
    assert [status for status, _ in answers] == [200, 200, 500, 400]
    assert [headers.get("x-example-plugin") for _, headers in answers] == ["1"] * 4
    assert answers[1][1]["Content-Type"].startswith("text/event-stream")
    # Only /v1/messages: the hook reads exchange.endpoint.
    status, headers = await _headers(server, "/v1/messages/count_tokens", json=BODY)
    assert status == 200
    assert "x-example-plugin" not in headers


async def test_without_a_response_hook_plugin_nothing_is_attached(
    tmp_path: Path, fake: FakeUpstream, serve: Serve
) -> None:
    fake.script(Reply(text="hello"))
    server = await serve(_config(tmp_path, _anthropic(fake), []))
    status, headers = await _headers(server, "/v1/messages", json=BODY)
    assert status == 200
    assert "x-example-plugin" not in headers
    # Zero cost when no plugin has response hooks: no plugin handler on aiohttp's prepare signal (the
    # gateway's own x-ccrouter-config-version is the only one).
    assert list(server.app.on_response_prepare) == [config_api.version_header]
    assert RESPONSE_HOOKS not in server.app


async def test_a_failing_response_hook_is_logged_and_the_response_goes_on(
    tmp_path: Path, fake: FakeUpstream, serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    plugin = tmp_path / "broken_hook.py"
    _write(
        plugin,
        "from ccrouter.hookspecs import hookimpl\n\n"
        "def explode(exchange, headers):\n    raise RuntimeError('hook broke')\n\n"
        "@hookimpl\ndef register_response_hooks(register, settings):\n    register(explode)\n",
        encoding="utf-8",
    )
    fake.script(Reply(text="hello"), Reply(text="streamed"))
    server = await serve(_config(tmp_path, _anthropic(fake), ["broken_hook.py", str(EXAMPLE)]))
    with caplog.at_level(logging.ERROR, logger="ccrouter.plugins"):
        plain = await _headers(server, "/v1/messages", json=BODY)
        streamed = await _headers(server, "/v1/messages", json={**BODY, "stream": True})
    # The other plugin's hook still ran; the response went on.
    assert [plain[0], streamed[0]] == [200, 200]
    assert [plain[1].get("x-example-plugin"), streamed[1].get("x-example-plugin")] == ["1", "1"]
    failures = [r for r in caplog.records if "response hook failed" in r.getMessage()]
    assert len(failures) == 2
    assert "plugin broken_hook.py:" in failures[0].getMessage()


async def test_a_plugin_provider_type_serves_requests(
    tmp_path: Path, fake: FakeUpstream, serve: Serve
) -> None:
    _write(
        (tmp_path / "relay_plugin.py"),
        "from ccrouter.hookspecs import hookimpl\n"
        "from ccrouter.providers.anthropic import AnthropicAdapter\n"
        "from ccrouter.providers.base import ProviderType\n\n"
        "class RelayAdapter(AnthropicAdapter):\n"
        "    def build(self, request, model, *, stream):\n"
        "        call = super().build(request, model, stream=stream)\n"
        "        call.headers['x-relay'] = 'yes'\n"
        "        return call\n\n"
        "@hookimpl\ndef register_providers(register):\n"
        "    register(ProviderType('relay', adapter=lambda config, registry: RelayAdapter(config)))\n",
        encoding="utf-8",
    )
    fake.script(Reply(text="relayed"))
    server = await serve(_config(tmp_path, _anthropic(fake, kind="relay"), ["relay_plugin.py"]))
    status, _ = await _headers(server, "/v1/messages", json=BODY)
    assert status == 200
    assert fake.requests[-1].headers["x-relay"] == "yes"


async def test_a_plugin_vendor_profile_gives_base_url_and_headers(
    tmp_path: Path, fake: FakeUpstream, serve: Serve
) -> None:
    _write(
        (tmp_path / "acme_vendor.py"),
        "from ccrouter.hookspecs import hookimpl\n"
        "from ccrouter.providers.openai_vendors import Vendor\n\n"
        "@hookimpl\ndef register_vendors(register):\n"
        f"    register(Vendor('acme', '{fake.url}/v1', extra_headers={{'x-acme': '1'}}))\n",
        encoding="utf-8",
    )
    provider = "  - {name: up, type: openai, vendor: acme, api_key: sk-test, models: [claude-sonnet-4-6]}\n"
    fake.script(Reply(text="from acme"))
    server = await serve(_config(tmp_path, provider, ["acme_vendor.py"]))
    status, _ = await _headers(server, "/v1/messages", json=BODY)
    assert status == 200
    assert fake.requests[-1].path == "/v1/chat/completions"
    assert fake.requests[-1].headers["x-acme"] == "1"
