"""Observers (ledger, metrics, alerts, request log) hear of every exchange once its response is on
its way; one that fails neither breaks the response nor silences the others."""

from __future__ import annotations

import aiohttp
from aiohttp.test_utils import TestServer
from gateway_support import settings_for

from ccrouter.api.state import STATE
from ccrouter.app import create_app
from ccrouter.exchange import Exchange
from ccrouter.testing import FakeUpstream, Reply

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}


class Failing:
    def on_exchange(self, exchange: Exchange) -> None:
        raise RuntimeError("observer broke")


class Recording:
    def __init__(self) -> None:
        self.seen: list[Exchange] = []

    def on_exchange(self, exchange: Exchange) -> None:
        self.seen.append(exchange)


async def test_a_failing_observer_breaks_neither_the_response_nor_the_others(fake: FakeUpstream) -> None:
    fake.script(Reply(text="hello"), Reply(text="again"))
    server = TestServer(create_app(settings_for(fake.url, "anthropic")), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        state = server.app[STATE]
        recording = Recording()
        state.observers[:0] = [Failing()]  # before the ledger's
        state.observers.append(recording)
        url = str(server.make_url("/v1/messages"))
        async with aiohttp.ClientSession() as session:
            for text in ("hello", "again"):
                async with session.post(url, json=BODY) as response:
                    assert response.status == 200
                    assert text.encode() in await response.read()
        # Each exchange was observed by the time its response reached the client...
        assert [e.status for e in recording.seen] == [200, 200]
        # ... and the ledger, after the failing observer, still wrote both rows.
        assert state.ledger is not None
        await state.ledger.flush()
        rows = await state.ledger.records()
        assert [row.request_id for row in rows] == [e.request_id for e in recording.seen]
    finally:
        await server.close()
