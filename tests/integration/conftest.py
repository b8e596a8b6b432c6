"""Fixtures that run the real gateway on loopback in front of the shipped fake upstreams."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from ccrouter.app import create_app
from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream

GatewayFactory = Callable[..., Awaitable[str]]

# One provider per wire format, each pointed at the same fake upstream.
WIRES: dict[str, dict[str, Any]] = {
    "openai": {"type": "openai", "suffix": "/v1", "model": "gpt-test"},
    "anthropic": {"type": "anthropic", "suffix": "", "model": "claude-sonnet-4-5"},
    "gemini": {"type": "gemini", "suffix": "/v1beta", "model": "gemini-2.5-flash"},
}


def settings_for(fake_url: str, wire: str, *, server: dict[str, Any] | None = None, **router: str) -> Settings:
    spec = WIRES[wire]
    return Settings.model_validate(
        {
            "server": server or {},
            "providers": [
                {
                    "name": "up",
                    "type": spec["type"],
                    "base_url": fake_url + spec["suffix"],
                    "api_key": "sk-test-secret-key",
                    "models": [spec["model"], "other-model"],
                }
            ],
            "router": {"default": f"up,{spec['model']}", **router},
        }
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture
async def gateway() -> AsyncIterator[GatewayFactory]:
    servers: list[TestServer] = []

    async def start(settings: Settings, *, simulated: bool = False) -> str:
        server = TestServer(create_app(settings, simulated=simulated), host="127.0.0.1", port=0)
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    yield start
    for server in servers:
        await server.close()
