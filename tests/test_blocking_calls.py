"""The suite's blockbuster fixture (``tests/conftest.py``) fails an async test that blocks the event
loop, in the test's own code or in the gateway's, and leaves sync code and awaiting alone."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from blockbuster import BlockingError

from ccrouter.api.endpoints import Endpoint
from ccrouter.app import create_app
from ccrouter.config import Settings
from ccrouter.hookspecs import hookimpl
from ccrouter.plugins import Registry, load_plugins


async def test_a_sleep_in_a_coroutine_is_caught() -> None:
    async def naps() -> None:
        time.sleep(0.001)  # noqa: ASYNC251 -- the deliberate mistake: it stops every other task meanwhile

    with pytest.raises(BlockingError, match=r"time\.sleep"):
        await naps()
    await asyncio.sleep(0.001)  # waiting the loop's way is fine


async def test_a_handler_that_blocks_fails_the_request() -> None:
    """Inside the gateway too: the blocking handler's request is a 500 (the error middleware's
    boundary), not a quiet stall."""

    async def slow(request: web.Request) -> web.Response:
        time.sleep(0.001)  # noqa: ASYNC251 -- deliberate
        return web.Response(text="slept")

    class SlowFront:
        @hookimpl
        def register_endpoints(self, register: object) -> None:
            register(Endpoint("GET", "/slow", slow, "slow"))  # type: ignore[operator]

    manager = load_plugins(entry_points=False)
    manager.register(SlowFront(), name="slow-front")
    settings = Settings.model_validate(
        {"providers": [{"name": "sim", "type": "simulated", "models": ["m"]}], "router": {"default": "sim,m"}}
    )
    server = TestServer(create_app(settings, registry=Registry.build(manager)), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session, session.get(server.make_url("/slow")) as response:
            assert response.status == 500
    finally:
        await server.close()


def test_sync_code_may_block() -> None:
    time.sleep(0.001)  # no event loop runs here: nothing to hold up
