"""The real gateway in front of the shipped fake upstream, on an event loop in a thread of its own, so
that Hypothesis (which drives plain functions) can send it thousands of requests.

One gateway serves a whole module: state left behind by one example is part of what is tested (the
decode caches are shared between requests on purpose).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from fuzz_support import Gateway, gateway_settings
from hypothesis import settings

from ccrouter.app import create_app
from ccrouter.testing import FakeUpstream

settings.load_profile("ccrouter-fuzz")


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fuzz-gateway", daemon=True)
    thread.start()

    async def start() -> tuple[FakeUpstream, TestServer, aiohttp.ClientSession]:
        fake = FakeUpstream()
        await fake.start()
        server = TestServer(create_app(gateway_settings(fake.url)), host="127.0.0.1", port=0)
        await server.start_server()
        return fake, server, aiohttp.ClientSession()

    fake, server, session = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=30)
    yield Gateway(loop, str(server.make_url("")).rstrip("/"), session)

    async def stop() -> None:
        await session.close()
        await server.close()
        await fake.stop()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()
