"""Observers (ledger, metrics, alerts, request log) hear of every exchange once its response is on
its way; one that fails neither breaks the response nor silences the others."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
from aiohttp.test_utils import TestServer
from gateway_support import settings_for

from ccrouter.api.state import GATEWAY
from ccrouter.app import create_app
from ccrouter.exchange import Exchange, Observer
from ccrouter.hookspecs import hookimpl
from ccrouter.plugins import Registry, load_plugins
from ccrouter.services import ObserverContext
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


class FailingFirst:
    """A plugin whose observer is told before the built-in ones (the ledger's)."""

    @hookimpl(tryfirst=True)
    def register_observers(self, register: Callable[[Observer], None], context: ObserverContext) -> None:
        register(Failing())


class RecordingLast:
    def __init__(self) -> None:
        self.recording = Recording()

    @hookimpl
    def register_observers(self, register: Callable[[Observer], None], context: ObserverContext) -> None:
        register(self.recording)


async def test_a_failing_observer_breaks_neither_the_response_nor_the_others(fake: FakeUpstream) -> None:
    fake.script(Reply(text="hello"), Reply(text="again"))
    manager = load_plugins(entry_points=False)
    last = RecordingLast()
    manager.register(FailingFirst(), name="failing")
    manager.register(last, name="recording")
    app = create_app(settings_for(fake.url, "anthropic"), registry=Registry.build(manager))
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        state = server.app[GATEWAY].current
        recording = last.recording
        # Built-ins in registration order, a tryfirst plugin before them, the others after.
        assert isinstance(state.observers[0], Failing)
        assert state.observers[-1] is recording
        url = str(server.make_url("/v1/messages"))
        async with aiohttp.ClientSession() as session:
            for text in ("hello", "again"):
                async with session.post(url, json=BODY) as response:
                    assert response.status == 200
                    assert text.encode() in await response.read()
        # Each exchange was observed by the time its response reached the client...
        assert [e.status for e in recording.seen] == [200, 200]
        # ... and the ledger, after the failing observer, still wrote both rows.
        await state.ledger.flush()
        rows = await state.ledger.records()
        assert [row.request_id for row in rows] == [e.request_id for e in recording.seen]
    finally:
        await server.close()
