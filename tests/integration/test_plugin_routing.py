"""A third-party plugin (``routing_plugin.py``, loaded by path through ``plugins:``) adds a ranking
strategy, a routing rule and a pre-dispatch answer; all work through the real HTTP app, on the
Anthropic and OpenAI fronts, streamed and not. An answer reaches no provider and leaves live state as
it was; a plugin that fails while serving is a clean error for that request."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ccrouter.api.state import GATEWAY
from ccrouter.app import create_app
from ccrouter.config import Settings
from ccrouter.errors import ConfigError
from ccrouter.testing import FakeUpstream, Fault

PLUGIN = str(Path(__file__).with_name("routing_plugin.py"))
MODEL = "claude-sonnet-4-6"
PING = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "ping"}]}
HELLO = {**PING, "messages": [{"role": "user", "content": "hello"}]}
Serve = Callable[..., Awaitable[tuple[str, web.Application]]]


@pytest.fixture
async def fakes() -> AsyncIterator[dict[str, FakeUpstream]]:
    upstreams = {name: FakeUpstream(rate_limit_headers=False) for name in "abc"}
    for upstream in upstreams.values():
        await upstream.start()
    yield upstreams
    for upstream in upstreams.values():
        await upstream.stop()


@pytest.fixture
async def serve(fakes: dict[str, FakeUpstream], tmp_path: Path) -> AsyncIterator[Serve]:
    """A gateway over the three fakes with the test plugin loaded by path; returns (url, app)."""
    servers: list[TestServer] = []

    async def start(strategy: str = "priority", **router: Any) -> tuple[str, web.Application]:
        settings = Settings.model_validate(
            {
                "plugins": [PLUGIN],
                "providers": [
                    {"name": name, "type": "anthropic", "base_url": fake.url, "models": [MODEL]}
                    for name, fake in fakes.items()
                ],
                "router": {
                    "default": f"a,{MODEL}",
                    "fallback": {"default": [f"b,{MODEL}", f"c,{MODEL}"]},
                    **router,
                },
                "routing": {"strategy": strategy, "auto_fallback": "off"},
                "store": {"url": f"sqlite:///{tmp_path / 'usage.db'}", "flush_interval_s": 0.05},
            }
        )
        app = create_app(settings, config_dir=tmp_path)
        server = TestServer(app, host="127.0.0.1", port=0)
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/"), app

    yield start
    for server in servers:
        await server.close()


async def _post(url: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + path, data=orjson.dumps(body)) as response,
    ):
        return response.status, {k.lower(): v for k, v in response.headers.items()}, await response.read()


def _openai(body: dict[str, Any]) -> dict[str, Any]:
    return {"model": body["model"], "max_tokens": body["max_tokens"], "messages": body["messages"]}


async def _health(url: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(url + "/health/providers") as response:
        rows: list[dict[str, Any]] = (await response.json())["providers"]
    return rows


# ------------------------------------------------------------------ the strategy


async def test_a_plugin_strategy_orders_the_fallbacks(fakes: dict[str, FakeUpstream], serve: Serve) -> None:
    fakes["a"].script(*[Fault("status", status=500) for _ in range(20)])
    url, _ = await serve("reverse")
    for path, body in [
        ("/v1/messages", HELLO),
        ("/v1/messages", {**HELLO, "stream": True}),
        ("/v1/chat/completions", _openai(HELLO)),
        ("/v1/chat/completions", {**_openai(HELLO), "stream": True}),
    ]:
        status, headers, raw = await _post(url, path, body)
        assert status == 200, raw
        # The route goes first (strategies rank within tiers); the fallback list runs backwards.
        assert headers["x-ccrouter-provider"] == "c"
        assert "strategy reverse within tiers" in headers["x-ccrouter-route-reason"]
    assert len(fakes["c"].requests) == 4
    assert fakes["b"].requests == []


async def test_the_same_gateway_with_priority_falls_back_in_config_order(
    fakes: dict[str, FakeUpstream], serve: Serve
) -> None:
    # The control for the test above: what "reverse" changes is observable.
    fakes["a"].script(Fault("status", status=500))
    url, _ = await serve("priority")
    status, headers, _ = await _post(url, "/v1/messages", HELLO)
    assert (status, headers["x-ccrouter-provider"]) == (200, "b")
    assert fakes["c"].requests == []


async def test_an_unknown_strategy_names_the_registered_ones(serve: Serve) -> None:
    with pytest.raises(ConfigError) as caught:
        await serve("fastest")
    assert caught.value.message == (
        "routing.strategy: unknown strategy 'fastest' (registered: availability, broken, cost,"
        " intelligent, performance, priority, reverse)"
    )


# ------------------------------------------------------------------ the routing rule


async def test_a_plugin_rule_is_asked_before_the_feature_scenarios(
    fakes: dict[str, FakeUpstream], serve: Serve
) -> None:
    url, _ = await serve(think=f"c,{MODEL}")
    thinking = {"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2048}
    status, headers, _ = await _post(url, "/v1/messages", {**HELLO, **thinking, "model": "to-b"})
    assert (status, headers["x-ccrouter-scenario"], headers["x-ccrouter-provider"]) == (200, "plugin", "b")
    # After an explicit provider,model, though; and the think scenario still applies without it.
    status, headers, _ = await _post(url, "/v1/messages", {**HELLO, "model": f"a,{MODEL}"})
    assert (status, headers["x-ccrouter-scenario"]) == (200, "explicit")
    status, headers, _ = await _post(url, "/v1/messages", {**HELLO, **thinking})
    assert (status, headers["x-ccrouter-scenario"], headers["x-ccrouter-provider"]) == (200, "think", "c")


# ------------------------------------------------------------------ the pre-dispatch answer


def _sse_types(raw: bytes) -> list[str]:
    return [line[7:] for line in raw.decode().splitlines() if line.startswith("event: ")]


def _openai_chunks(raw: bytes) -> list[Any]:
    lines = [line[6:] for line in raw.decode().splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [orjson.loads(line) for line in lines[:-1]]


async def test_a_pre_dispatch_answer_serves_every_front_without_a_provider_call(
    fakes: dict[str, FakeUpstream], serve: Serve
) -> None:
    url, app = await serve()
    assert (await _post(url, "/v1/messages", HELLO))[0] == 200  # a real call: live state has data
    before = await _health(url)

    status, headers, raw = await _post(url, "/v1/messages", PING)
    assert status == 200
    body = orjson.loads(raw)
    assert body["content"] == [{"type": "text", "text": "pong"}]
    assert body["usage"]["input_tokens"] == 7
    assert body["usage"]["output_tokens"] == 1
    assert headers["x-ccrouter-answered-by"] == "pong"
    assert (headers["x-ccrouter-provider"], headers["x-ccrouter-model"]) == ("a", MODEL)
    assert "answered by pong (no provider call)" in headers["x-ccrouter-route-reason"]

    status, headers, raw = await _post(url, "/v1/messages", {**PING, "stream": True})
    assert (status, headers["x-ccrouter-answered-by"]) == (200, "pong")
    assert headers["content-type"].startswith("text/event-stream")
    assert _sse_types(raw) == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]

    status, headers, raw = await _post(url, "/v1/chat/completions", _openai(PING))
    assert (status, headers["x-ccrouter-answered-by"]) == (200, "pong")
    completion = orjson.loads(raw)
    assert completion["choices"][0]["message"]["content"] == "pong"
    assert completion["choices"][0]["finish_reason"] == "stop"

    streamed = {**_openai(PING), "stream": True, "stream_options": {"include_usage": True}}
    status, headers, raw = await _post(url, "/v1/chat/completions", streamed)
    assert (status, headers["x-ccrouter-answered-by"]) == (200, "pong")
    chunks = _openai_chunks(raw)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "pong"
    assert chunks[-1]["usage"]["completion_tokens"] == 1

    # No provider saw them, and live state (windows, latency, breakers) is as it was.
    assert len(fakes["a"].requests) == 1
    assert fakes["b"].requests == fakes["c"].requests == []
    assert await _health(url) == before
    # The ledger records them like any exchange: the route as decided, the usage as the answer gave it.
    ledger = app[GATEWAY].current.ledger
    assert ledger is not None
    await ledger.flush()
    rows = await ledger.records()
    assert len(rows) == 5
    for row in rows[1:]:
        assert (row.status, row.provider, row.model, row.attempts) == (200, "a", MODEL, 0)
        assert (row.input_tokens, row.output_tokens, row.cache_read_tokens, row.estimated) == (7, 1, 2, False)
    assert rows[0].attempts == 1


async def test_answered_streams_parse_in_the_official_sdks(serve: Serve) -> None:
    url, _ = await serve()
    client = anthropic.AsyncAnthropic(base_url=url, api_key="k", max_retries=0)
    async with client.messages.stream(model=MODEL, max_tokens=64, messages=PING["messages"]) as stream:
        message = await stream.get_final_message()
    assert message.content[0].type == "text"
    assert message.content[0].text == "pong"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (7, 1)
    await client.close()
    oai = openai.AsyncOpenAI(base_url=url + "/v1", api_key="k", max_retries=0)
    chunks = await oai.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "ping"}], stream=True
    )
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in chunks if chunk.choices])
    assert text == "pong"
    await oai.close()


# ------------------------------------------------------------------ plugins failing while serving


def _said(raw: bytes, front: str) -> tuple[str, str]:
    body = orjson.loads(raw)
    if front == "anthropic":
        assert body["type"] == "error"
        return body["error"]["type"], body["error"]["message"]
    return body["error"]["code"], body["error"]["message"]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_failing_answer_or_rule_is_a_clean_error_naming_the_plugin(
    serve: Serve, stream: bool
) -> None:
    url, _ = await serve()
    explode = {**PING, "stream": stream, "messages": [{"role": "user", "content": "explode"}]}
    cases = [
        (explode, "pre-dispatch answer 'pong' of plugin"),
        ({**HELLO, "stream": stream, "model": "rule-explode"}, "routing rule 'to-b' of plugin"),
    ]
    for body, phrase in cases:
        for front, path, sent in [
            ("anthropic", "/v1/messages", body),
            ("openai", "/v1/chat/completions", {**_openai(body), "stream": stream}),
        ]:
            status, _, raw = await _post(url, path, sent)
            assert status == 500, raw
            error_type, message = _said(raw, front)
            assert error_type == "api_error"
            assert phrase in message
            assert PLUGIN in message
    # A plugin's deliberate refusal is the client's error; and the gateway goes on serving.
    refuse = {**PING, "messages": [{"role": "user", "content": "refuse"}]}
    status, _, raw = await _post(url, "/v1/messages", refuse)
    assert (status, _said(raw, "anthropic")[0]) == (400, "invalid_request_error")
    assert (await _post(url, "/v1/messages", PING))[0] == 200


async def test_a_failing_strategy_is_a_clean_error_naming_it(serve: Serve) -> None:
    url, _ = await serve("broken")
    status, _, raw = await _post(url, "/v1/chat/completions", _openai(HELLO))
    assert status == 500
    error_type, message = _said(raw, "openai")
    assert error_type == "api_error"
    assert message.startswith("ranking strategy 'broken' of plugin 'ccrouter_plugin_routing_plugin_")
    assert "raised ZeroDivisionError" in message
