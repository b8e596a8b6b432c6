"""Small requests are not queued behind large bodies (issue 11): at most a few large bodies are read
and decoded at once, the others wait before being read, and a small body never waits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import orjson
from gateway_support import GatewayFactory, settings_for

from ccrouter.api.large import LARGE_BODY, SLOTS, LargeBodies
from ccrouter.testing import FakeUpstream

GOOD = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


def _large(seed: int) -> bytes:
    text = f"{seed} " + "x" * LARGE_BODY
    return orjson.dumps({**GOOD, "messages": [{"role": "user", "content": text}]})


async def _slowly(body: bytes, release: asyncio.Event) -> AsyncIterator[bytes]:
    """The body's first half, then the rest once ``release`` is set: a slow client."""
    yield body[: len(body) // 2]
    await release.wait()
    yield body[len(body) // 2 :]


async def test_a_small_request_passes_large_ones_that_wait_for_a_slot(
    fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    url = await gateway(settings_for(fake.url, "anthropic")) + "/v1/messages"
    release = asyncio.Event()
    async with aiohttp.ClientSession() as session:

        async def post(body: bytes, *, slow: bool) -> int:
            data = _slowly(body, release) if slow else body
            headers = {"content-type": "application/json", "content-length": str(len(body))}
            async with session.post(url, data=data, headers=headers) as response:
                await response.read()
                return response.status

        # Slow clients hold every slot while their bodies trickle in.
        slow = [asyncio.create_task(post(_large(i), slow=True)) for i in range(SLOTS)]
        await asyncio.sleep(0.3)
        waiting = asyncio.create_task(post(_large(99), slow=False))
        await asyncio.sleep(0.3)
        # The small request is answered at once; the large one that came after the slots filled
        # has not been decoded nor sent upstream.
        assert await asyncio.wait_for(post(orjson.dumps(GOOD), slow=False), 5) == 200
        assert len(fake.requests) == 1
        assert not waiting.done()
        release.set()
        assert await asyncio.gather(*slow, waiting) == [200] * (SLOTS + 1)
        assert len(fake.requests) == SLOTS + 2


async def test_slow_bodies_holding_every_slot_delay_another_large_one_at_most_max_wait() -> None:
    """Clients trickling their large bodies in hold the slots; the next large body waits for one at
    most ``max_wait``, then is read anyway."""
    bodies = LargeBodies(slots=1, max_wait=0.2)
    entered = asyncio.Event()
    release = asyncio.Event()

    async def slow_holder() -> None:
        async with bodies.turn(None):
            entered.set()
            await release.wait()

    holder = asyncio.create_task(slow_holder())
    await entered.wait()
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with bodies.turn(LARGE_BODY):
        waited = loop.time() - started
    assert 0.15 < waited < 1.0
    async with bodies.turn(10):  # a small body never waits
        assert loop.time() - started - waited < 0.05
    release.set()
    await holder
    async with bodies.turn(LARGE_BODY):  # the slot came back
        pass
