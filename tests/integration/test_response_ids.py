"""Message ids in the client's format whatever the upstream's: ``msg_`` under /v1/messages,
``chatcmpl-`` under /v1/chat/completions, streamed or not."""

from __future__ import annotations

import re

import aiohttp
import orjson
import pytest
from gateway_support import GatewayFactory, settings_for

from ccrouter.codecs.sse import SSEParser
from ccrouter.testing import FakeUpstream

USER = [{"role": "user", "content": "hello"}]
ANTHROPIC_ID = re.compile(r"msg_[A-Za-z0-9_-]+")
OPENAI_ID = re.compile(r"chatcmpl-[A-Za-z0-9_-]+")


async def _post(url: str, body: dict[str, object]) -> bytes:
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        assert response.status == 200, await response.text()
        return await response.read()


def _frames(data: bytes) -> list[dict[str, object]]:
    return [orjson.loads(frame.data) for frame in SSEParser().feed(data) if frame.data.startswith(b"{")]


@pytest.mark.parametrize("wire", ["openai", "gemini", "anthropic"])
@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_clients_get_msg_ids(
    fake: FakeUpstream, gateway: GatewayFactory, wire: str, stream: bool
) -> None:
    url = await gateway(settings_for(fake.url, wire))
    body = {"model": "m", "max_tokens": 50, "messages": USER, "stream": stream}
    data = await _post(url + "/v1/messages", body)
    if stream:
        starts = [frame for frame in _frames(data) if frame["type"] == "message_start"]
        [message_id] = [start["message"]["id"] for start in starts]  # type: ignore[index]
    else:
        message_id = orjson.loads(data)["id"]
    assert ANTHROPIC_ID.fullmatch(message_id), message_id


@pytest.mark.parametrize("wire", ["anthropic", "gemini", "openai"])
@pytest.mark.parametrize("stream", [False, True])
async def test_openai_clients_get_chatcmpl_ids(
    fake: FakeUpstream, gateway: GatewayFactory, wire: str, stream: bool
) -> None:
    url = await gateway(settings_for(fake.url, wire))
    body = {"model": "m", "max_tokens": 50, "messages": USER, "stream": stream}
    data = await _post(url + "/v1/chat/completions", body)
    ids = {frame["id"] for frame in _frames(data)} if stream else {orjson.loads(data)["id"]}
    assert len(ids) == 1
    assert OPENAI_ID.fullmatch(str(ids.pop()))
