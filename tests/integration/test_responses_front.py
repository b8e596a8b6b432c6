"""OpenAI SDK clients get the same routing through POST /v1/responses (``client.responses``): text
and a function tool round, streamed and not, to an Anthropic-format and an OpenAI-chat upstream; bad
input answered in OpenAI's envelope; an upstream failing mid-stream ends in error + response.failed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp.test_utils import TestServer
from gateway_support import GatewayFactory, keyed_settings, settings_for
from prometheus_client.parser import text_string_to_metric_families

from ccrouter.api.state import GATEWAY
from ccrouter.app import create_app
from ccrouter.store.base import Store
from ccrouter.testing import FakeUpstream, Fault, Reply, ToolCall

UPSTREAMS = ["anthropic", "openai"]
TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
        "strict": True,
    }
]


@pytest.mark.parametrize("wire", UPSTREAMS)
async def test_text_answer(
    fake: FakeUpstream, gateway: GatewayFactory, openai_at: Callable[[str], openai.AsyncOpenAI], wire: str
) -> None:
    fake.script(Reply(text="Bonjour", input_tokens=5, output_tokens=2, cache_read_tokens=3))
    client = openai_at(await gateway(settings_for(fake.url, wire)))
    response = await client.responses.create(
        model="whatever",
        instructions="Answer in French.",
        input="Say hello",
        max_output_tokens=50,
        temperature=0.5,
        metadata={"ticket": "T-1"},
    )
    assert response.id.startswith("resp_")
    assert response.object == "response"
    assert response.status == "completed"
    assert response.model == "whatever"
    assert response.output_text == "Bonjour"
    assert response.metadata == {"ticket": "T-1"}
    assert response.usage is not None
    assert response.usage.output_tokens == 2
    assert response.usage.input_tokens_details.cached_tokens == 3
    assert response.usage.total_tokens == response.usage.input_tokens + 2
    sent = fake.requests[-1].body
    assert sent.get("max_tokens", sent.get("max_completion_tokens")) == 50
    assert sent["temperature"] == 0.5
    if wire == "anthropic":
        assert sent["system"][0]["text"] == "Answer in French."
        assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Say hello"}]}]
    else:
        assert sent["messages"][0] == {"role": "system", "content": "Answer in French."}
        assert sent["messages"][1]["role"] == "user"


@pytest.mark.parametrize("wire", UPSTREAMS)
@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "streamed"])
async def test_function_tool_round(
    fake: FakeUpstream,
    gateway: GatewayFactory,
    openai_at: Callable[[str], openai.AsyncOpenAI],
    wire: str,
    streamed: bool,
) -> None:
    """function_call out, function_call_output back in the next request's input."""
    fake.script(
        Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_9")], chunk_size=4),
        Reply(text="It is 18C in Paris.", chunk_size=5),
    )
    client = openai_at(await gateway(settings_for(fake.url, wire)))
    history: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = await _create(client, streamed, input=history, tools=TOOLS, parallel_tool_calls=False)
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather"
    assert call.call_id == "call_9"
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert first.status == "completed"
    history += [item.model_dump(exclude_none=True) for item in first.output]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "18C"})
    second = await _create(client, streamed, input=history, tools=TOOLS)
    assert second.output_text == "It is 18C in Paris."
    sent = fake.requests[-1].body
    if wire == "anthropic":
        assert sent["messages"][1]["content"] == [
            {"type": "tool_use", "id": "call_9", "name": "get_weather", "input": {"city": "Paris"}}
        ]
        assert sent["messages"][2]["content"][0]["type"] == "tool_result"
        assert sent["messages"][2]["content"][0]["tool_use_id"] == "call_9"
    else:
        assert sent["messages"][1]["tool_calls"][0]["id"] == "call_9"
        assert sent["messages"][2] == {"role": "tool", "tool_call_id": "call_9", "content": "18C"}


async def _create(client: openai.AsyncOpenAI, streamed: bool, **kwargs: Any) -> Any:
    if not streamed:
        return await client.responses.create(model="whatever", **kwargs)
    # The SDK's stream helper checks the event grammar (items open before their deltas, ids kept).
    async with client.responses.stream(model="whatever", **kwargs) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    return final


async def test_streamed_text_events(
    fake: FakeUpstream, gateway: GatewayFactory, openai_at: Callable[[str], openai.AsyncOpenAI]
) -> None:
    fake.script(Reply(text="Hello there, friend", chunk_size=4, input_tokens=7, output_tokens=4))
    client = openai_at(await gateway(settings_for(fake.url, "anthropic")))
    stream = await client.responses.create(model="whatever", input="hi", stream=True)
    events = [event async for event in stream]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == "Hello there, friend"
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = events[-1]
    assert final.type == "response.completed"
    assert final.response.output_text == "Hello there, friend"
    assert final.response.usage is not None
    assert final.response.usage.input_tokens == 7


async def test_max_output_tokens_is_incomplete(
    fake: FakeUpstream, gateway: GatewayFactory, openai_at: Callable[[str], openai.AsyncOpenAI]
) -> None:
    fake.script(Reply(text="cut", stop="length"), Reply(text="cut", stop="length"))
    client = openai_at(await gateway(settings_for(fake.url, "anthropic")))
    response = await client.responses.create(model="m", input="hi", max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    stream = await client.responses.create(model="m", input="hi", max_output_tokens=16, stream=True)
    last = [event async for event in stream][-1]
    assert last.type == "response.incomplete"


@pytest.mark.parametrize("wire", UPSTREAMS)
async def test_upstream_failing_mid_stream(
    fake: FakeUpstream, gateway: GatewayFactory, openai_at: Callable[[str], openai.AsyncOpenAI], wire: str
) -> None:
    reply = Reply(text="a long answer that will be cut", chunk_size=3)
    fake.script(Fault("stream_error", status=529, after_chunks=3, reply=reply))
    client = openai_at(await gateway(settings_for(fake.url, wire)))
    async with asyncio.timeout(10):
        stream = await client.responses.create(model="m", input="hi", stream=True)
        events = [event async for event in stream]
    kinds = [e.type for e in events]
    assert kinds[-2:] == ["error", "response.failed"]
    assert events[-1].response.status == "failed"
    assert events[-1].response.error is not None
    async with asyncio.timeout(10):
        fake.script(Fault("drop_mid_stream", after_chunks=3, reply=reply))
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            async with client.responses.stream(model="m", input="hi") as helper:
                await helper.get_final_response()


BAD_BODIES: list[tuple[Any, str]] = [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    ({"input": "hi"}, "model"),
    ({"model": "m"}, "input"),
    ({"model": "m", "input": 3}, "input"),
    ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "role"),
    ({"model": "m", "input": "hi", "max_output_tokens": "many"}, "max_output_tokens"),
    ({"model": "m", "input": "hi", "temperature": "hot"}, "temperature"),
    ({"model": "m", "input": "hi", "stream": "yes"}, "stream"),
    ({"model": "m", "input": "hi", "previous_response_id": "resp_1"}, "whole conversation"),
    ({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}, "no conversation state"),
    ({"model": "m", "input": "hi", "tools": [{"type": "web_search"}]}, "web_search"),
    ({"model": "m", "input": "hi", "text": {"format": {"type": "json_schema"}}}, "json_schema"),
    ({"model": "m", "input": [{"type": "function_call_output", "output": "x"}]}, "call_id"),
]


@pytest.mark.parametrize(("body", "message"), BAD_BODIES)
async def test_bad_input_is_a_400_in_openai_envelope(
    fake: FakeUpstream, gateway: GatewayFactory, body: Any, message: str
) -> None:
    url = await gateway(settings_for(fake.url, "anthropic"))
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/v1/responses", data=data, headers={"content-type": "application/json"}) as r,
    ):
        assert r.status == 400
        error = (await r.json())["error"]
    assert error["type"] == "invalid_request_error"
    assert message in error["message"]
    assert set(error) == {"message", "type", "param", "code"}
    assert not fake.requests


async def test_previous_response_id_through_the_sdk(
    fake: FakeUpstream, gateway: GatewayFactory, openai_at: Callable[[str], openai.AsyncOpenAI]
) -> None:
    client = openai_at(await gateway(settings_for(fake.url, "openai")))
    with pytest.raises(openai.BadRequestError, match="keeps no conversation state"):
        await client.responses.create(model="m", input="more", previous_response_id="resp_abc")


async def test_oversize_body_is_a_413_in_openai_envelope(fake: FakeUpstream, gateway: GatewayFactory) -> None:
    url = await gateway(settings_for(fake.url, "anthropic", server={"max_body_bytes": 2048}))
    data = json.dumps({"model": "m", "input": "x" * 10_000}).encode()
    async with aiohttp.ClientSession() as session, session.post(url + "/v1/responses", data=data) as r:
        assert r.status == 413
        error = (await r.json())["error"]
    assert error["type"] == "invalid_request_error"
    assert "max_body_bytes" in error["message"]


async def test_client_keys_ledger_and_metrics(fake: FakeUpstream, tmp_path: Path) -> None:
    """The same guard and records as chat completions: a wrong key is a 401 in OpenAI's envelope
    (counted as an auth failure, no ledger row), every served request is a ledger row and a metrics
    sample labelled ``responses``."""
    fake.script(
        Reply(text="one", input_tokens=11, output_tokens=3),
        Reply(text="two", input_tokens=13, output_tokens=4, cache_read_tokens=2),
    )
    settings = keyed_settings(fake.url, tmp_path, "ck-responses-1")
    server = TestServer(create_app(settings), host="127.0.0.1", port=0)
    await server.start_server()
    url = str(server.make_url("/v1"))
    try:
        async with openai.AsyncOpenAI(base_url=url, api_key="wrong", max_retries=0) as intruder:
            with pytest.raises(openai.AuthenticationError):
                await intruder.responses.create(model="m", input="hi")
        async with openai.AsyncOpenAI(base_url=url, api_key="ck-responses-1", max_retries=0) as client:
            await client.responses.create(model="m", input="hi")
            stream = await client.responses.create(model="m", input="hi", stream=True)
            assert [e.type async for e in stream][-1] == "response.completed"
            with pytest.raises(openai.BadRequestError):
                await client.responses.create(model="m", input="hi", previous_response_id="resp_1")
        await asyncio.sleep(0)  # the observers run once the last response is on its way
        async with aiohttp.ClientSession() as session, session.get(server.make_url("/metrics")) as r:
            metrics = await r.text()
        ledger = server.app[GATEWAY].current.ledger
        assert isinstance(ledger, Store)
        await ledger.flush()
        rows = [
            (row.endpoint, row.status, row.input_tokens, row.output_tokens, row.cache_read_tokens)
            for row in await ledger.records()
        ]
    finally:
        await server.close()
    assert rows == [
        ("responses", 200, 11, 3, 0),
        ("responses", 200, 13, 4, 2),
        ("responses", 400, 0, 0, 0),
    ]
    samples = {
        (family.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
    }
    ok = (("model", "claude-sonnet-4-6"), ("provider", "up"), ("route", "responses"), ("status", "200"))
    assert samples[("ccr_requests", ok)] == 2
    tokens = (("kind", "input"), ("model", "claude-sonnet-4-6"), ("provider", "up"))
    assert samples[("ccr_tokens", tokens)] == 24
    assert "sk-upstream-secret" not in metrics
