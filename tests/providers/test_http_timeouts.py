"""HttpProvider's deadlines for a non-streamed call: one timer, first for the response head
(connect + first_byte), then for the whole call (total); each names its own limit."""

from __future__ import annotations

from typing import Any

import pytest

from ccrouter.config import ProviderConfig
from ccrouter.errors import UpstreamTimeoutError
from ccrouter.messages import Message, MessagesRequest, TextBlock
from ccrouter.providers.http import HttpProvider, new_session
from ccrouter.providers.openai import OpenAIAdapter
from ccrouter.testing import FakeUpstream, Fault


async def _complete(fake: FakeUpstream, **timeouts: Any) -> None:
    cfg = ProviderConfig(
        name="fake",
        type="openai",
        vendor="generic",
        base_url=fake.url + "/v1",
        api_key="k",
        timeouts={"connect": 0.1, **timeouts},
    )
    provider = HttpProvider(cfg, OpenAIAdapter(cfg), new_session())
    request = MessagesRequest(model="m", max_tokens=10, messages=[Message("user", [TextBlock("hi")])])
    try:
        await provider.complete(request, "fake-model")
    finally:
        await provider.aclose()


async def test_no_head_before_connect_plus_first_byte(fake: FakeUpstream) -> None:
    fake.script(Fault("slow_first_byte", delay=3))
    with pytest.raises(UpstreamTimeoutError, match=r"^fake: no response within 0\.3s$"):
        await _complete(fake, first_byte=0.2, total=5)


async def test_total_nearer_than_the_head_deadline(fake: FakeUpstream) -> None:
    fake.script(Fault("slow_first_byte", delay=3))
    with pytest.raises(UpstreamTimeoutError, match=r"^fake: no complete response within 0\.2s$"):
        await _complete(fake, first_byte=5, total=0.2)


async def test_a_head_in_time_then_the_answer(fake: FakeUpstream) -> None:
    # A slow head within both deadlines: the call completes (the timer then bounds the body).
    fake.script(Fault("slow_first_byte", delay=0.15))
    await _complete(fake, first_byte=0.2, total=5)
