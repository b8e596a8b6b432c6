"""Transformers named in the config, applied by the real gateway around the provider it calls:
what the fake upstream receives, and what the client gets back (streamed and not)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer
from gateway_support import GatewayFactory

from ccrouter.app import create_app
from ccrouter.config import Settings
from ccrouter.errors import ConfigError
from ccrouter.hookspecs import hookimpl
from ccrouter.messages import MessagesRequest
from ccrouter.plugins import Registry, load_plugins
from ccrouter.testing import FakeUpstream, Reply, ToolCall
from ccrouter.transformers.base import Transformer

HEADERS = {"anthropic-version": "2023-06-01", "content-type": "application/json"}
READ_TOOL = {"name": "read", "description": "Read a file", "input_schema": {"type": "object"}}


def _settings(url: str, wire: str, transformers: list[Any], models: list[Any] | None = None) -> Settings:
    return Settings.model_validate(
        {
            "providers": [
                {
                    "name": "up",
                    "type": wire,
                    "base_url": url + ("/v1" if wire == "openai" else ""),
                    "api_key": "sk-test",
                    "models": models or ["m1"],
                    "transformers": transformers,
                }
            ],
            "router": {"default": "up,m1"},
            "routing": {"auto_fallback": "off"},
        }
    )


def _events(sse: str) -> list[dict[str, Any]]:
    return [
        orjson.loads(line[6:])
        for frame in sse.split("\n\n")
        for line in frame.split("\n")
        if line.startswith("data: ")
    ]


async def _post(url: str, body: dict[str, Any]) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/v1/messages", data=orjson.dumps(body), headers=HEADERS) as response,
    ):
        return response.status, await response.text()


async def test_openai_provider_gets_tooluse_sampling_and_customparams(
    fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    transformers = [
        "tooluse",
        ["sampling", {"temperature": 0.2, "repetition_penalty": 1.1}],
        ["customparams", {"chat_template_kwargs": {"enable_thinking": False}}],
    ]
    url = await gateway(_settings(fake.url, "openai", transformers))
    fake.script(Reply(tool_calls=[ToolCall("ExitTool", {"response": "Nothing to run: 4."})]))
    body = {
        "model": "x",
        "max_tokens": 100,
        "temperature": 1.0,
        "tools": [READ_TOOL],
        "messages": [{"role": "user", "content": "2+2?"}],
    }
    status, text = await _post(url, body)
    assert status == 200, text
    answer = orjson.loads(text)
    assert answer["content"] == [{"type": "text", "text": "Nothing to run: 4."}]
    assert answer["stop_reason"] == "end_turn"
    sent = fake.requests[0].body
    assert [tool["function"]["name"] for tool in sent["tools"]] == ["read", "ExitTool"]
    assert sent["tool_choice"] == "required"
    assert "ExitTool" in sent["messages"][-1]["content"]
    assert (sent["temperature"], sent["repetition_penalty"]) == (0.2, 1.1)
    assert sent["chat_template_kwargs"] == {"enable_thinking": False}


async def test_streamed_exit_tool_reaches_the_client_as_text(
    fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    url = await gateway(_settings(fake.url, "openai", ["tooluse"]))
    fake.script(Reply(tool_calls=[ToolCall("ExitTool", {"response": "Streamed answer."})], chunk_size=5))
    body = {
        "model": "x",
        "max_tokens": 100,
        "stream": True,
        "tools": [READ_TOOL],
        "messages": [{"role": "user", "content": "hi"}],
    }
    status, text = await _post(url, body)
    assert status == 200, text
    events = _events(text)
    starts = [event["content_block"] for event in events if event["type"] == "content_block_start"]
    assert starts == [{"type": "text", "text": ""}]
    deltas = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
    assert deltas == "Streamed answer."
    assert next(e for e in events if e["type"] == "message_delta")["delta"]["stop_reason"] == "end_turn"
    assert fake.requests[0].stream


async def test_anthropic_stream_gets_repaired_arguments_and_no_cache_control(
    fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    url = await gateway(_settings(fake.url, "anthropic", ["enhancetool", "cleancache"]))
    # An Anthropic-format upstream that streams broken JSON (single quotes, trailing comma).
    fake.script(Reply(text="Writing.", tool_calls=[ToolCall("write", "{'path': 'a.txt', 'body': 'x',}")]))
    body = {
        "model": "x",
        "max_tokens": 100,
        "stream": True,
        "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        "tools": [READ_TOOL],
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "go", "cache_control": {"type": "ephemeral"}}],
            }
        ],
    }
    status, text = await _post(url, body)
    assert status == 200, text
    events = _events(text)
    pieces = [
        e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta" and e["index"] == 1
    ]
    assert pieces == ['{"path":"a.txt","body":"x"}']
    assert b"cache_control" not in fake.requests[0].raw
    assert fake.requests[0].body["system"] == [{"type": "text", "text": "be brief"}]


async def test_model_transformers_apply_to_that_model_only(
    fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    models = [{"name": "m1", "transformers": [["maxtoken", {"max_tokens": 64}]]}, "m2"]
    url = await gateway(_settings(fake.url, "openai", [["customparams", {"seed": 7}]], models))
    fake.script(Reply(text="a"), Reply(text="b"))
    for model in ("up,m1", "up,m2"):
        body = {"model": model, "max_tokens": 500, "messages": [{"role": "user", "content": "hi"}]}
        status, text = await _post(url, body)
        assert status == 200, text
    first, second = (record.body for record in fake.requests)
    assert (first["model"], first["max_tokens"], first["seed"]) == ("m1", 64, 7)
    assert (second["model"], second["max_tokens"], second["seed"]) == ("m2", 500, 7)


def test_unknown_transformer_is_refused_when_the_app_is_built() -> None:
    with pytest.raises(ConfigError) as caught:
        create_app(_settings("http://127.0.0.1:1", "openai", ["tooluse", "deepseek"]))
    message = caught.value.message
    assert "providers[0] (up).transformers[1]: unknown transformer 'deepseek'" in message
    assert "vendor: deepseek" in message
    assert "registered: cleancache, customparams, enhancetool" in message
    with pytest.raises(ConfigError, match=r"transformers\[0\] \(maxtoken\): bad options"):
        create_app(_settings("http://127.0.0.1:1", "openai", [["maxtoken", {"max_tokens": "lots"}]]))


class _Broken(Transformer):
    name = "broken"

    def __init__(self, options: Any) -> None:
        pass

    def request(self, request: MessagesRequest, model: str) -> MessagesRequest:
        raise RuntimeError("boom")


class _BrokenPlugin:
    @hookimpl
    def register_transformers(self, register: Any) -> None:
        register("broken", _Broken)


@pytest.fixture
async def broken_gateway(fake: FakeUpstream) -> AsyncIterator[str]:
    manager = load_plugins(entry_points=False)
    manager.register(_BrokenPlugin(), name="broken-plugin")
    settings = _settings(fake.url, "openai", ["broken"])
    server = TestServer(create_app(settings, registry=Registry.build(manager)), host="127.0.0.1", port=0)
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


async def test_a_transformer_that_raises_is_a_clean_error(broken_gateway: str, fake: FakeUpstream) -> None:
    for stream in (False, True):
        body = {
            "model": "x",
            "max_tokens": 50,
            "stream": stream,
            "messages": [{"role": "user", "content": "hi"}],
        }
        status, text = await _post(broken_gateway, body)
        error = orjson.loads(text)
        assert status == 500
        assert error["type"] == "error"
        assert "transformer 'broken' failed" in error["error"]["message"]
    assert fake.requests == []


def _simulated(transformers: list[Any]) -> Settings:
    return Settings.model_validate(
        {
            "providers": [
                {"name": "sim", "type": "simulated", "models": ["m1"], "transformers": transformers}
            ],
            "router": {"default": "sim,m1"},
        }
    )


async def test_a_provider_of_its_own_is_wrapped_too(gateway: GatewayFactory) -> None:
    url = await gateway(_simulated(["enhancetool"]))
    bash = {"name": "Bash", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}
    body = {
        "model": "x",
        "max_tokens": 100,
        "stream": True,
        "tools": [bash],
        "messages": [{"role": "user", "content": "Run: ls -la /tmp/some/long/path"}],
    }
    status, text = await _post(url, body)
    assert status == 200, text
    pieces = [
        e["delta"]["partial_json"]
        for e in _events(text)
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta"
    ]
    assert len(pieces) == 1  # held until the call was complete, then sent whole
    assert orjson.loads(pieces[0])["command"] == "ls -la /tmp/some/long/path"


async def test_body_fields_for_a_provider_without_a_body_are_refused() -> None:
    server = TestServer(create_app(_simulated([["customparams", {"seed": 1}]])), host="127.0.0.1", port=0)
    with pytest.raises(ConfigError, match=r"transformers \['customparams'\] add body fields"):
        await server.start_server()
    await server.close()
