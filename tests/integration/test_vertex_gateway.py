"""A ``type: vertex`` provider through the real gateway, the official anthropic SDK as the client, to the
shipped fake Vertex AI, its tokens exchanged at the fake Google token endpoint from a service-account
key (short-lived, so they are refreshed during a test)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anthropic
import orjson
import pytest
from gateway_support import GatewayFactory

from ccrouter.config import Settings
from ccrouter.testing import FakeGoogleAuth, FakeVertex, Reply, ToolCall

CLAUDE = "claude-sonnet-4-5@20250929"
GEMINI = "gemini-2.5-flash"
BASH_TOOL = {
    "name": "Bash",
    "description": "Run a shell command",
    "input_schema": {
        "type": "object",
        "properties": {"command": {"type": "string"}},
        "required": ["command"],
    },
}
AnthropicAt = Callable[[str], anthropic.AsyncAnthropic]


@pytest.fixture
async def auth() -> AsyncIterator[FakeGoogleAuth]:
    async with FakeGoogleAuth(expires_in=3600) as server:
        yield server


@pytest.fixture
async def vertex(auth: FakeGoogleAuth) -> AsyncIterator[FakeVertex]:
    async with FakeVertex(auth, rate_limit_headers=False) as server:
        yield server


async def _key_file(auth: FakeGoogleAuth, tmp_path: Path) -> str:
    path = tmp_path / "service-account.json"
    await asyncio.to_thread(path.write_bytes, orjson.dumps(auth.service_account()))
    return str(path)


def _settings(vertex: FakeVertex, default: str = CLAUDE, **provider: Any) -> Settings:
    return Settings.model_validate(
        {
            "providers": [
                {
                    "name": "vx",
                    "type": "vertex",
                    "project": "fake-project",
                    "region": "us-east5",
                    "base_url": vertex.url,
                    "models": [CLAUDE, GEMINI],
                    **provider,
                }
            ],
            "router": {"default": f"vx,{default}"},
        }
    )


def _tool_turn(tool_id: str) -> list[Any]:
    return [
        {"role": "user", "content": "list the files"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": tool_id, "name": "Bash", "input": {"command": "ls"}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": "a.txt"}]},
    ]


async def test_claude_on_vertex_with_a_tool_round_and_a_token_refreshed_midway(
    auth: FakeGoogleAuth,
    vertex: FakeVertex,
    gateway: GatewayFactory,
    anthropic_at: AnthropicAt,
    tmp_path: Path,
) -> None:
    auth.expires_in = 2.0  # fresh for one second: the second turn needs a new token
    client = anthropic_at(await gateway(_settings(vertex, credentials_file=await _key_file(auth, tmp_path))))
    vertex.script(
        Reply(tool_calls=[ToolCall("Bash", {"command": "ls"}, id="toolu_1")]), Reply(text="One file: a.txt")
    )

    first = await client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=200,
        tools=[BASH_TOOL],
        messages=[{"role": "user", "content": "list the files"}],
    )
    assert first.stop_reason == "tool_use"
    call = first.content[-1]
    assert call.type == "tool_use"
    assert call.name == "Bash"
    assert call.input == {"command": "ls"}

    await asyncio.sleep(1.2)
    texts = []
    async with client.messages.stream(
        model="claude-sonnet-4-5", max_tokens=200, tools=[BASH_TOOL], messages=_tool_turn(call.id)
    ) as stream:
        async for text in stream.text_stream:
            texts.append(text)
        final = await stream.get_final_message()
    assert "".join(texts) == "One file: a.txt"
    assert final.stop_reason == "end_turn"

    unary, streamed = vertex.requests
    prefix = "/v1/projects/fake-project/locations/us-east5/publishers/anthropic/models/"
    assert unary.path == prefix + CLAUDE + ":rawPredict"
    assert streamed.path == prefix + CLAUDE + ":streamRawPredict"
    for record in (unary, streamed):
        assert isinstance(record.body, dict)
        assert "model" not in record.body
        assert record.body["anthropic_version"] == "vertex-2023-10-16"
    assert isinstance(streamed.body, dict)
    assert streamed.body["messages"][-1]["content"][0]["tool_use_id"] == call.id
    tokens = vertex.bearer_tokens()
    assert len(tokens) == 2, "the token was refreshed between the two turns"
    assert all(auth.valid(token) or token == tokens[0] for token in tokens)
    assert auth.exchanges == 2


async def test_a_gemini_model_on_vertex(
    auth: FakeGoogleAuth,
    vertex: FakeVertex,
    gateway: GatewayFactory,
    anthropic_at: AnthropicAt,
    tmp_path: Path,
) -> None:
    settings = _settings(vertex, default=GEMINI, credentials_file=await _key_file(auth, tmp_path))
    client = anthropic_at(await gateway(settings))
    vertex.script(Reply(text="Gemini here"), Reply(tool_calls=[ToolCall("Bash", {"command": "pwd"})]))
    message = await client.messages.create(
        model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "Gemini here"
    async with client.messages.stream(
        model="claude-sonnet-4-5",
        max_tokens=100,
        tools=[BASH_TOOL],
        messages=[{"role": "user", "content": "where?"}],
    ) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[-1].type == "tool_use"
    prefix = "/v1/projects/fake-project/locations/us-east5/publishers/google/models/"
    assert [record.path for record in vertex.requests] == [
        prefix + GEMINI + ":generateContent",
        prefix + GEMINI + ":streamGenerateContent",
    ]
    assert vertex.requests[1].query == {"alt": "sse"}
    assert vertex.requests[0].wire == "gemini"


async def test_a_401_refreshes_the_token_once_and_retries(
    auth: FakeGoogleAuth,
    vertex: FakeVertex,
    gateway: GatewayFactory,
    anthropic_at: AnthropicAt,
    tmp_path: Path,
) -> None:
    client = anthropic_at(await gateway(_settings(vertex, credentials_file=await _key_file(auth, tmp_path))))
    await client.messages.create(model="m", max_tokens=10, messages=[{"role": "user", "content": "one"}])
    auth.revoke_all()  # the token still has an hour of life, but Vertex refuses it now
    vertex.script(Reply(text="after the refresh"))
    async with client.messages.stream(
        model="m", max_tokens=10, messages=[{"role": "user", "content": "two"}]
    ) as stream:
        final = await stream.get_final_message()
    assert final.content[0].type == "text"
    assert final.content[0].text == "after the refresh"
    # one; two refused (401) with the revoked token; two again with a new one
    sent = [record.headers["authorization"].removeprefix("Bearer ") for record in vertex.requests]
    assert len(sent) == 3
    assert sent[0] == sent[1] != sent[2]
    assert auth.valid(sent[2])
    assert auth.exchanges == 2


async def test_a_token_endpoint_failure_is_a_clean_error(
    auth: FakeGoogleAuth,
    vertex: FakeVertex,
    gateway: GatewayFactory,
    anthropic_at: AnthropicAt,
    tmp_path: Path,
) -> None:
    key_file = await _key_file(auth, tmp_path)
    client = anthropic_at(await gateway(_settings(vertex, credentials_file=key_file)))
    auth.fail(400, "invalid_grant", times=5)
    with pytest.raises(anthropic.APIStatusError) as caught:
        await client.messages.create(model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 502
    message = str(caught.value)
    assert "could not get a Google access token" in message
    assert "invalid_grant" in message
    assert "PRIVATE KEY" not in message
    assert vertex.requests == [], "nothing reached Vertex without a token"
    with pytest.raises(anthropic.APIStatusError) as streamed:
        async with client.messages.stream(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        ) as s:
            await s.get_final_message()
    assert streamed.value.status_code == 502


async def test_a_static_access_token_still_works(gateway: GatewayFactory, anthropic_at: AnthropicAt) -> None:
    async with FakeVertex(tokens=("ya29.static-token",), rate_limit_headers=False) as vertex:
        client = anthropic_at(await gateway(_settings(vertex, api_key="ya29.static-token")))
        vertex.script(Reply(text="static"))
        message = await client.messages.create(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
        assert message.content[0].type == "text"
        assert message.content[0].text == "static"
        assert vertex.bearer_tokens() == ["ya29.static-token"]


async def test_application_default_credentials(
    auth: FakeGoogleAuth,
    vertex: FakeVertex,
    gateway: GatewayFactory,
    anthropic_at: AnthropicAt,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # ADC reads GOOGLE_APPLICATION_CREDENTIALS first (never the metadata server when it is set).
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", await _key_file(auth, tmp_path))
    client = anthropic_at(await gateway(_settings(vertex)))
    message = await client.messages.create(
        model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content
    assert auth.exchanges == 1
    assert auth.valid(vertex.bearer_tokens()[0])
