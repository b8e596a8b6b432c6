"""The built-in simulated provider: the shipped fake OpenAI-format upstream, run in-process on loopback.

A newcomer with no API key gets a working gateway: requests go through the real OpenAI translation
path to ``ccrouter.testing.FakeUpstream``, whose default behaviour (``ccrouter.testing.simulated``)
answers plainly that it is simulated and can drive a tool round ("Run: <command>").
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from pydantic import SecretStr

from ccrouter.config import ProviderConfig
from ccrouter.messages import MessagesRequest, MessagesResponse, StreamEvent
from ccrouter.providers.http import HttpProvider, new_session
from ccrouter.providers.openai import OpenAIAdapter
from ccrouter.testing import FakeUpstream

__all__ = ["SimulatedProvider", "open_simulated"]

_KEEP_REQUESTS = 0


class SimulatedProvider:
    def __init__(self, config: ProviderConfig, fake: FakeUpstream, inner: HttpProvider) -> None:
        self.name = config.name
        self.wire = inner.wire
        self._fake = fake
        self._inner = inner

    async def complete(self, request: MessagesRequest, model: str) -> MessagesResponse:
        return await self._inner.complete(request, model)

    def stream(self, request: MessagesRequest, model: str) -> AsyncIterator[list[StreamEvent]]:
        return self._inner.stream(request, model)

    async def aclose(self) -> None:
        await self._inner.aclose()
        await self._fake.stop()


async def open_simulated(config: ProviderConfig) -> SimulatedProvider:
    # It serves for the gateway's whole life: it keeps none of the requests it answers (a fake in a
    # test keeps them all for its assertions; here they would only grow the gateway's memory).
    fake = FakeUpstream(rate_limit_headers=False, keep_requests=_KEEP_REQUESTS)
    base_url = await fake.start("127.0.0.1", 0)
    inner_config = config.model_copy(
        update={
            "type": "openai",
            "vendor": "generic",
            "base_url": base_url + "/v1",
            # In-process, on loopback: never through an egress proxy the environment names.
            "proxy": SecretStr("none"),
        }
    )
    return SimulatedProvider(
        config, fake, HttpProvider(inner_config, OpenAIAdapter(inner_config), new_session(inner_config))
    )
