"""Fixtures that run the real gateway on loopback in front of the shipped fake upstreams."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import anthropic
import openai
import pytest
from aiohttp.test_utils import TestServer
from gateway_support import GatewayFactory

from ccrouter.app import create_app
from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream


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


@pytest.fixture
async def anthropic_at() -> AsyncIterator[Callable[[str], anthropic.AsyncAnthropic]]:
    """An official Anthropic SDK client for a gateway URL, closed after the test."""
    opened: list[anthropic.AsyncAnthropic] = []

    def make(url: str) -> anthropic.AsyncAnthropic:
        client = anthropic.AsyncAnthropic(base_url=url, api_key="client-key", max_retries=0)
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.close()


@pytest.fixture
async def openai_at() -> AsyncIterator[Callable[[str], openai.AsyncOpenAI]]:
    """An official OpenAI SDK client for a gateway URL, closed after the test."""
    opened: list[openai.AsyncOpenAI] = []

    def make(url: str) -> openai.AsyncOpenAI:
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="client-key", max_retries=0)
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.close()
