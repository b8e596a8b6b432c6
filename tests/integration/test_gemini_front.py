"""Gemini API clients (the official google-genai SDK) get the same routing through
POST /v1beta/models/{model}:generateContent and :streamGenerateContent, to every upstream format."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from gateway_support import WIRES, GatewayFactory, settings_for
from google import genai
from google.genai import errors, types

from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream, Fault, Reply, ToolCall

# The SDK's aiohttp transport (used whenever aiohttp is installed) subclasses ClientSession, which
# aiohttp warns about; the suite turns warnings into errors.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Inheritance class AiohttpClientSession from ClientSession:DeprecationWarning"
)
CLIENT_KEY = "client-key-gemini-0123456789"
ADMIN = "admin-token-gemini-0123456789"
WEATHER = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="Weather for a city",
            parameters=types.Schema(
                type=types.Type.OBJECT,
                properties={"city": types.Schema(type=types.Type.STRING)},
                required=["city"],
            ),
        )
    ]
)
GeminiFactory = Callable[..., genai.Client]
LONG = Reply(text="a long answer " * 20, chunk_size=4)


@pytest.fixture
async def gemini_at() -> AsyncIterator[GeminiFactory]:
    """An official google-genai client for a gateway URL (no retries), closed after the test."""
    opened: list[genai.Client] = []

    def make(url: str, key: str = CLIENT_KEY) -> genai.Client:
        options = types.HttpOptions(base_url=url, retry_options=types.HttpRetryOptions(attempts=1))
        client = genai.Client(api_key=key, http_options=options)
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aio.aclose()


def keyed(fake_url: str, wire: str, tmp_path: Path) -> Settings:
    """``settings_for`` with a client key, an admin token and a SQLite ledger."""
    settings = settings_for(fake_url, wire)
    data = settings.model_dump(mode="json", exclude_unset=True)
    data["server"] = {"api_keys": [{"name": "gem", "key": CLIENT_KEY, "user": "gina"}], "admin_token": ADMIN}
    data["store"] = {"url": f"sqlite:///{tmp_path / 'usage.db'}", "flush_interval_s": 0.05}
    return Settings.model_validate(data)


@pytest.mark.parametrize("wire", list(WIRES))
async def test_generate_content(
    fake: FakeUpstream, gateway: GatewayFactory, gemini_at: GeminiFactory, wire: str
) -> None:
    fake.script(Reply(text="Bonjour", input_tokens=5, output_tokens=2))
    client = gemini_at(await gateway(settings_for(fake.url, wire)))
    response = await client.aio.models.generate_content(
        model="gemini-2.5-pro",
        contents="Say hello in French",
        config=types.GenerateContentConfig(
            system_instruction="Be brief", max_output_tokens=50, temperature=0.2, stop_sequences=["END"]
        ),
    )
    assert response.text == "Bonjour"
    assert response.candidates is not None
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.usage_metadata is not None
    assert response.usage_metadata.prompt_token_count == 5
    assert response.usage_metadata.candidates_token_count == 2
    assert response.usage_metadata.total_token_count == 7
    assert response.model_version == "gemini-2.5-pro"
    sent = fake.requests[-1]
    assert sent.wire == wire
    text = orjson.dumps(sent.body).decode()
    assert "Be brief" in text
    assert "Say hello in French" in text


@pytest.mark.parametrize("wire", list(WIRES))
async def test_streamed_text(
    fake: FakeUpstream, gateway: GatewayFactory, gemini_at: GeminiFactory, wire: str
) -> None:
    fake.script(Reply(text="one two three four five", input_tokens=9, output_tokens=5, chunk_size=4))
    client = gemini_at(await gateway(settings_for(fake.url, wire)))
    chunks = [
        chunk
        async for chunk in await client.aio.models.generate_content_stream(
            model="gemini-2.5-flash", contents="Count to five"
        )
    ]
    assert len(chunks) > 2
    assert "".join(chunk.text or "" for chunk in chunks) == "one two three four five"
    last = chunks[-1]
    assert last.candidates is not None
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata is not None
    assert last.usage_metadata.prompt_token_count == 9
    assert last.usage_metadata.candidates_token_count == 5
    assert fake.requests[-1].stream


async def _weather_round(client: genai.Client, stream: bool) -> list[types.Content]:
    """Ask, get a function call, answer it: the second request's history."""
    config = types.GenerateContentConfig(tools=[WEATHER])
    history = [types.Content(role="user", parts=[types.Part(text="Weather in Paris?")])]
    if stream:
        parts: list[types.Part] = []
        async for chunk in await client.aio.models.generate_content_stream(
            model="gemini-2.5-flash", contents=history, config=config
        ):
            if chunk.candidates and chunk.candidates[0].content and chunk.candidates[0].content.parts:
                parts.extend(chunk.candidates[0].content.parts)
        model_turn = types.Content(role="model", parts=parts)
    else:
        response = await client.aio.models.generate_content(
            model="gemini-2.5-flash", contents=history, config=config
        )
        assert response.candidates is not None
        assert response.candidates[0].content is not None
        model_turn = response.candidates[0].content
    calls = [part.function_call for part in model_turn.parts or [] if part.function_call]
    assert len(calls) == 1
    assert calls[0].name == "get_weather"
    assert calls[0].args == {"city": "Paris"}
    assert calls[0].id  # the tool-use id, for the response to name
    answer = types.Part(
        function_response=types.FunctionResponse(
            id=calls[0].id, name="get_weather", response={"output": "Sunny, 24 C"}
        )
    )
    history += [model_turn, types.Content(role="user", parts=[answer])]
    final = await client.aio.models.generate_content(
        model="gemini-2.5-flash", contents=history, config=config
    )
    assert final.text == "Sunny in Paris"
    return history


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("wire", ["anthropic", "openai"])
async def test_function_call_round(
    fake: FakeUpstream, gateway: GatewayFactory, gemini_at: GeminiFactory, wire: str, stream: bool
) -> None:
    fake.script(
        Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_w1")], chunk_size=3),
        Reply(text="Sunny in Paris"),
    )
    client = gemini_at(await gateway(settings_for(fake.url, wire)))
    await _weather_round(client, stream)
    first, second = fake.requests[-2], fake.requests[-1]
    if wire == "anthropic":
        assert first.body["tools"][0]["name"] == "get_weather"
        assert first.body["tools"][0]["input_schema"]["properties"]["city"]["type"] == "string"
        call = second.body["messages"][1]["content"][0]
        result = second.body["messages"][2]["content"][0]
        assert call["type"] == "tool_use"
        assert call["id"] == "call_w1"
        assert result == {
            "type": "tool_result",
            "tool_use_id": "call_w1",
            "content": [{"type": "text", "text": "Sunny, 24 C"}],
        }
    else:
        assert first.body["tools"][0]["function"]["name"] == "get_weather"
        assistant, tool = second.body["messages"][1], second.body["messages"][2]
        assert assistant["tool_calls"][0]["id"] == tool["tool_call_id"]
        assert tool["role"] == "tool"
        assert "Sunny, 24 C" in orjson.dumps(tool["content"]).decode()


async def test_function_response_without_ids_pairs_by_name_and_order(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path
) -> None:
    """A client that drops the ids (older SDKs do) still gets its responses paired with the calls."""
    fake.script(Reply(text="done"))
    url = await gateway(settings_for(fake.url, "anthropic"))
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "Weather in Paris and Rome?"}]},
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"output": "sun"}}},
                    {"functionResponse": {"name": "get_weather", "response": {"error": "no data"}}},
                ],
            },
        ]
    }
    async with aiohttp.ClientSession() as session:
        path = "/v1beta/models/gemini-2.5-flash:generateContent"
        async with session.post(url + path, json=body) as response:
            assert response.status == 200, await response.text()
    messages = fake.requests[-1].body["messages"]
    ids = [block["id"] for block in messages[1]["content"]]
    assert len(set(ids)) == 2
    results = messages[2]["content"]
    assert [block["tool_use_id"] for block in results] == ids
    assert results[1]["is_error"] is True


async def test_streamed_json_array_without_alt_sse(fake: FakeUpstream, gateway: GatewayFactory) -> None:
    fake.script(Reply(text="abcdefgh", chunk_size=2))
    url = await gateway(settings_for(fake.url, "openai"))
    body = {"contents": [{"role": "user", "parts": [{"text": "letters"}]}]}
    async with aiohttp.ClientSession() as session:
        path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
        async with session.post(url + path, json=body) as response:
            assert response.status == 200
            assert response.content_type == "application/json"
            chunks = orjson.loads(await response.read())
    assert isinstance(chunks, list)
    assert len(chunks) > 2
    text = "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"])
    assert text == "abcdefgh"
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


@pytest.mark.parametrize("wire", ["anthropic", "openai"])
async def test_mid_stream_failure_ends_cleanly(
    fake: FakeUpstream, gateway: GatewayFactory, gemini_at: GeminiFactory, wire: str
) -> None:
    fake.script(Fault("drop_mid_stream", after_chunks=6, reply=LONG))
    client = gemini_at(await gateway(settings_for(fake.url, wire)))
    received: list[str] = []

    async def read() -> None:
        async with asyncio.timeout(10):
            stream = await client.aio.models.generate_content_stream(
                model="gemini-2.5-flash", contents="Tell me"
            )
            async for chunk in stream:
                received.append(chunk.text or "")

    with pytest.raises(errors.APIError) as caught:
        await read()
    assert "".join(received)  # the failure came after the first bytes
    assert caught.value.code == 503
    assert caught.value.status == "UNAVAILABLE"


async def test_mid_stream_failure_closes_the_json_array(fake: FakeUpstream, gateway: GatewayFactory) -> None:
    fake.script(Fault("drop_mid_stream", after_chunks=6, reply=LONG))
    url = await gateway(settings_for(fake.url, "anthropic"))
    body = {"contents": [{"role": "user", "parts": [{"text": "Tell me"}]}]}
    async with aiohttp.ClientSession() as session:
        path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
        async with session.post(url + path, json=body) as response:
            chunks = orjson.loads(await response.read())
    assert chunks[-1]["error"]["status"] == "UNAVAILABLE"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "JSON object"),
        (b"{}", "contents"),
        (b'{"contents": [{"role": "robot", "parts": [{"text": "hi"}]}]}', "contents[0].role"),
        (
            b'{"contents": [{"role": "model", "parts": [{"functionCall": {"args": {}}}]}]}',
            "functionCall.name",
        ),
        (b'{"contents": [{"parts": [{"functionCall": {"name": "f"}}]}]}', "model turn"),
        (b'{"contents": [{"parts": "hi"}]}', "contents[0].parts"),
        (b'{"contents": [{"parts": [{"text": 5}]}]}', "text"),
        (
            b'{"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"maxOutputTokens": "9"}}',
            "maxOutput",
        ),
        (
            b'{"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"candidateCount": 2}}',
            "candidate",
        ),
        (
            b'{"contents": [{"parts": [{"text": "x"}]}],'
            b' "toolConfig": {"functionCallingConfig": {"mode": 1}}}',
            "mode",
        ),
        (b'{"contents": [{"parts": [{"text": "x"}]}], "tools": [{"functionDeclarations": [{}]}]}', "name"),
    ],
)
async def test_bad_input_is_a_400_in_googles_envelope(
    fake: FakeUpstream, gateway: GatewayFactory, body: bytes, needle: str
) -> None:
    url = await gateway(settings_for(fake.url, "anthropic"))
    async with aiohttp.ClientSession() as session:
        for action in ("generateContent", "streamGenerateContent?alt=sse", "countTokens"):
            path = f"/v1beta/models/gemini-2.5-flash:{action}"
            headers = {"content-type": "application/json"}
            async with session.post(url + path, data=body, headers=headers) as response:
                assert response.status == 400, (action, await response.text())
                error = (await response.json())["error"]
    assert error["code"] == 400
    assert error["status"] == "INVALID_ARGUMENT"
    assert needle in error["message"]
    assert fake.requests == []


async def test_sdk_sees_upstream_errors_as_google_errors(
    fake: FakeUpstream, gateway: GatewayFactory, gemini_at: GeminiFactory
) -> None:
    fake.script(Fault("status", status=529), Fault("status", status=429, retry_after=3))
    client = gemini_at(await gateway(settings_for(fake.url, "anthropic")))
    with pytest.raises(errors.ServerError) as server:
        await client.aio.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert (server.value.code, server.value.status) == (503, "UNAVAILABLE")
    with pytest.raises(errors.ClientError) as client_error:
        await client.aio.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert (client_error.value.code, client_error.value.status) == (429, "RESOURCE_EXHAUSTED")


async def test_count_tokens_and_models(
    fake: FakeUpstream, gateway: GatewayFactory, gemini_at: GeminiFactory
) -> None:
    client = gemini_at(await gateway(settings_for(fake.url, "openai")))
    counted = await client.aio.models.count_tokens(
        model="gemini-2.5-flash", contents="How many tokens are in this sentence, roughly?"
    )
    assert counted.total_tokens is not None
    assert 5 < counted.total_tokens < 40
    names = [model.name async for model in await client.aio.models.list()]
    assert "models/up,gpt-test" in names
    found = await client.aio.models.get(model="up,gpt-test")
    assert found.display_name == "gpt-test (up)"
    with pytest.raises(errors.ClientError) as missing:
        await client.aio.models.get(model="nowhere")
    assert (missing.value.code, missing.value.status) == (404, "NOT_FOUND")
    assert fake.requests == []  # all answered by the gateway


async def test_keys_ledger_and_metrics(
    fake: FakeUpstream,
    gateway: GatewayFactory,
    gemini_at: GeminiFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``x-goog-api-key`` (the SDK's) and ``?key=`` authenticate; a wrong key is a 401 in Google's
    envelope; each request is one ledger row and counted in the metrics; the key is in no log line."""
    caplog.set_level(logging.DEBUG)
    fake.script(
        Reply(text="hi", input_tokens=3, output_tokens=1), Reply(text="hey", input_tokens=4, output_tokens=2)
    )
    url = await gateway(keyed(fake.url, "anthropic", tmp_path))
    with pytest.raises(errors.ClientError) as refused:
        await gemini_at(url, key="wrong-key").aio.models.generate_content(
            model="gemini-2.5-flash", contents="hi"
        )
    assert (refused.value.code, refused.value.status) == (401, "UNAUTHENTICATED")
    response = await gemini_at(url).aio.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert response.text == "hi"
    body = {"contents": [{"parts": [{"text": "hey"}]}]}
    async with aiohttp.ClientSession() as session:
        path = f"/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key={CLIENT_KEY}"
        async with session.post(url + path, json=body) as streamed:
            assert streamed.status == 200
            assert b'"finishReason":"STOP"' in await streamed.read()
        async with session.post(url + "/v1beta/models/gemini-2.5-flash:generateContent", json=body) as bare:
            assert bare.status == 401
            assert "x-goog-api-key" in (await bare.json())["error"]["message"]
        await asyncio.sleep(0.3)  # the ledger writer's interval
        admin = {"authorization": f"Bearer {ADMIN}"}
        async with session.get(url + "/api/requests", headers=admin) as listed:
            rows = (await listed.json())["requests"]
        async with session.get(url + "/metrics", headers=admin) as metrics:
            exported = await metrics.text()
    assert [(row["endpoint"], row["user"], row["status"]) for row in rows] == [
        ("generate_content", "gina", 200),
        ("generate_content", "gina", 200),
    ]
    assert sorted(row["input_tokens"] for row in rows) == [3, 4]
    labels = 'model="claude-sonnet-4-6",provider="up",route="generate_content",status="200"'
    assert f"ccr_requests_total{{{labels}}} 2.0" in exported
    # aiohttp's access log (which writes the query string) is the test server's: ``ccrouter serve``
    # runs without one (``ccrouter.app``). The SDK's own debug lines are the client's.
    ours = [r for r in caplog.records if not r.name.startswith(("aiohttp.access", "google_genai"))]
    logged = "\n".join(record.getMessage() + repr(record.__dict__) for record in ours)
    assert CLIENT_KEY not in logged
    assert CLIENT_KEY not in orjson.dumps(rows).decode()


async def test_unknown_gemini_path_answers_in_googles_envelope(
    fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    url = await gateway(settings_for(fake.url, "anthropic"))
    path = "/v1beta/models/gemini-2.5-flash:embedContent"
    async with aiohttp.ClientSession() as session, session.post(url + path, json={}) as response:
        assert response.status in (404, 405)
        error: dict[str, Any] = (await response.json())["error"]
    assert error["code"] == response.status
    assert error["status"] in ("NOT_FOUND", "FAILED_PRECONDITION")
