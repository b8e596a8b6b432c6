"""One endpoint table (``ccrouter.api.endpoints``): a front added by a plugin's ``register_endpoints``,
and nothing else, is served, answers errors in its envelope, is labelled in the metrics and recorded
in the ledger; a path that is no endpoint stays ``other``."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from ccrouter.api.endpoints import OTHER, Endpoint, EndpointTable
from ccrouter.api.state import GATEWAY
from ccrouter.app import create_app
from ccrouter.config import Settings
from ccrouter.errors import ConfigError
from ccrouter.store.base import Store

# A tiny front: POST /echo answers {"echo": text}; a body without text is the client's error. It lies
# outside /v1/ and speaks OpenAI's error envelope, so both come from its entry alone.
ECHO_PLUGIN = textwrap.dedent(
    """
    from aiohttp import web

    from ccrouter.api.endpoints import Endpoint
    from ccrouter.errors import RequestError
    from ccrouter.hookspecs import hookimpl


    async def echo(request: web.Request) -> web.Response:
        body = await request.json()
        if not isinstance(body.get("text"), str):
            raise RequestError("text: a string is required")
        return web.json_response({"echo": body["text"]})


    @hookimpl
    def register_endpoints(register):
        register(Endpoint("POST", "/echo", echo, "echo", envelope="openai"))
    """
)


def _settings(tmp_path: Path) -> Settings:
    return Settings.model_validate(
        {
            "plugins": [str(tmp_path / "echo_front.py")],
            "providers": [{"name": "sim", "type": "simulated", "models": ["m"]}],
            "router": {"default": "sim,m"},
            "store": {"url": f"sqlite:///{tmp_path / 'usage.db'}", "flush_interval_s": 0.05},
        }
    )


async def _post(session: aiohttp.ClientSession, url: URL, body: dict[str, Any]) -> tuple[int, Any]:
    async with session.post(url, json=body) as response:
        return response.status, orjson.loads(await response.read())


async def test_a_plugin_endpoint_is_served_enveloped_labelled_and_recorded(tmp_path: Path) -> None:
    await asyncio.to_thread((tmp_path / "echo_front.py").write_text, ECHO_PLUGIN)
    server = TestServer(create_app(_settings(tmp_path), config_dir=tmp_path), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            assert await _post(session, server.make_url("/echo"), {"text": "hi"}) == (200, {"echo": "hi"})
            status, error = await _post(session, server.make_url("/echo"), {})
            assert status == 400
            assert error == {
                "error": {
                    "message": "text: a string is required",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_request_error",
                }
            }
            # Below the endpoint's path, a 404 in its envelope too; elsewhere Anthropic's.
            status, error = await _post(session, server.make_url("/echo/deeper"), {})
            assert (status, error["error"]["code"]) == (404, "not_found_error")
            status, error = await _post(session, server.make_url("/v1/no-such-front"), {})
            assert (status, error["type"]) == (404, "error")
            async with session.get(server.make_url("/")) as response:
                assert "/echo" in (await response.json())["endpoints"]
            await asyncio.sleep(0)  # the observers run once the last response is on its way
            async with session.get(server.make_url("/metrics")) as response:
                metrics = await response.text()
        assert 'ccr_requests_total{model="",provider="",route="echo",status="200"} 1.0' in _sorted(metrics)
        assert 'ccr_requests_total{model="",provider="",route="echo",status="400"} 1.0' in _sorted(metrics)
        # A client-chosen path is never a label.
        assert 'ccr_requests_total{model="",provider="",route="other",status="404"} 1.0' in _sorted(metrics)
        assert "no-such-front" not in metrics
        ledger = server.app[GATEWAY].current.ledger
        assert isinstance(ledger, Store)
        await ledger.flush()
        rows = [(row.endpoint, row.status) for row in await ledger.records()]
        # /echo/deeper is no endpoint and not under /v1/: not API traffic, not recorded.
        assert rows == [("echo", 200), ("echo", 400), ("other", 404)]
    finally:
        await server.close()


def _sorted(exposition: str) -> str:
    """The exposition with each sample's labels in name order (prometheus-client keeps declaration
    order), so an assertion does not depend on it."""
    lines = []
    for line in exposition.splitlines():
        name, brace, rest = line.partition("{")
        if not brace:
            lines.append(line)
            continue
        labels, _, value = rest.partition("} ")
        lines.append(f"{name}{{{','.join(sorted(labels.split(',')))}}} {value}")
    return "\n".join(lines)


def test_the_table_refuses_the_reserved_name_and_a_path_of_two_minds() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response()

    with pytest.raises(ConfigError, match="reserved"):
        EndpointTable([Endpoint("POST", "/x", handler, OTHER)])
    with pytest.raises(ConfigError, match="differ"):
        EndpointTable([Endpoint("POST", "/x", handler, "x"), Endpoint("GET", "/x", handler, "y")])
    # A later entry for the same method and path replaces the earlier one (a plugin over a built-in).
    table = EndpointTable([Endpoint("POST", "/x", handler, "x"), Endpoint("post", "/x", handler, "mine")])
    assert (len(table), table.name("/x"), table.name("/y")) == (1, "mine", OTHER)
