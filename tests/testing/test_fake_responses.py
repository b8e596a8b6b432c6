"""The fake upstream's OpenAI Responses wire (``/v1/responses``), read by the official openai SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest

from ccrouter.testing import FakeUpstream, Fault, Reply, ToolCall
from ccrouter.testing.script import RecordedRequest
from ccrouter.testing.simulated import SIMULATED_NOTICE, simulated_reply

ARGS = {"command": "ls -la", "description": "List files"}
RICH = Reply(
    text="Let me list the files.",
    thinking="The user wants a listing.",
    tool_calls=[ToolCall("Bash", ARGS, id="call_1")],
    input_tokens=120,
    output_tokens=45,
    cache_read_tokens=30,
    chunk_size=5,
)
INPUT: Any = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as server:
        yield server


@pytest.fixture
async def gpt(fake: FakeUpstream) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=fake.url + "/v1", api_key="x", max_retries=0) as client:
        yield client


async def test_not_streamed(fake: FakeUpstream, gpt: openai.AsyncOpenAI) -> None:
    fake.script(RICH)
    response = await gpt.responses.create(model="o3-pro", input=INPUT, store=False)
    assert response.status == "completed"
    assert [item.type for item in response.output] == ["reasoning", "message", "function_call"]
    assert response.output_text == "Let me list the files."
    call = response.output[2]
    assert call.type == "function_call"
    assert (call.name, call.call_id) == ("Bash", "call_1")
    assert response.usage is not None
    assert response.usage.input_tokens == 150  # cached tokens included, as OpenAI counts them
    assert response.usage.input_tokens_details.cached_tokens == 30
    assert response.usage.output_tokens == 45
    recorded = fake.requests[-1]
    assert (recorded.wire, recorded.path, recorded.model, recorded.stream) == (
        "openai_responses",
        "/v1/responses",
        "o3-pro",
        False,
    )


async def test_streamed(fake: FakeUpstream, gpt: openai.AsyncOpenAI) -> None:
    fake.script(RICH)
    stream = await gpt.responses.create(model="o3-pro", input=INPUT, stream=True)
    kinds: list[str] = []
    text = thinking = arguments = ""
    final = None
    async for event in stream:
        kinds.append(event.type)
        if event.type == "response.output_text.delta":
            text += event.delta
        elif event.type == "response.reasoning_summary_text.delta":
            thinking += event.delta
        elif event.type == "response.function_call_arguments.delta":
            arguments += event.delta
        elif event.type == "response.completed":
            final = event.response
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert (text, thinking) == (RICH.text, RICH.thinking)
    assert arguments == ToolCall("Bash", ARGS).arguments_json()
    assert final is not None
    assert final.output_text == RICH.text
    assert fake.requests[-1].stream


async def test_length_stop_is_incomplete(fake: FakeUpstream, gpt: openai.AsyncOpenAI) -> None:
    fake.script(Reply(text="cut sh", stop="length"))
    response = await gpt.responses.create(model="o3-pro", input=INPUT)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"


async def test_status_fault_is_openais_envelope(fake: FakeUpstream, gpt: openai.AsyncOpenAI) -> None:
    fake.script(Fault("status", status=429, retry_after=2))
    with pytest.raises(openai.RateLimitError) as caught:
        await gpt.responses.create(model="o3-pro", input=INPUT)
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.code == "rate_limit_exceeded"


async def test_stream_error_event(fake: FakeUpstream) -> None:
    fake.script(Fault("stream_error", status=500, after_chunks=4, reply=RICH))
    async with aiohttp.ClientSession() as http:
        body = {"model": "o3-pro", "input": INPUT, "stream": True}
        async with http.post(fake.url + "/v1/responses", json=body) as response:
            raw = await response.read()
    frames = raw.strip().split(b"\n\n")
    assert len(frames) == 5
    assert frames[-1].startswith(b'event: error\ndata: {"type":"error","code":"server_error"')


async def test_bad_frame_fault(fake: FakeUpstream) -> None:
    fake.script(Fault("bad_frame", after_chunks=3, reply=RICH))
    async with aiohttp.ClientSession() as http:
        body = {"model": "o3-pro", "input": INPUT, "stream": True}
        async with http.post(fake.url + "/v1/responses", json=body) as response:
            raw = await response.read()
    frames = raw.strip().split(b"\n\n")
    assert len(frames) == 4
    assert frames[-1] == b"data: {this is not json"


async def test_a_wrong_key_is_a_401_in_openais_format() -> None:
    async with (
        FakeUpstream(api_key="right") as fake,
        openai.AsyncOpenAI(base_url=fake.url + "/v1", api_key="wrong", max_retries=0) as client,
    ):
        with pytest.raises(openai.AuthenticationError):
            await client.responses.create(model="o3-pro", input=INPUT)
        assert fake.requests[-1].wire == "openai_responses"


def _recorded(body: dict[str, Any]) -> RecordedRequest:
    return RecordedRequest("openai_responses", "POST", "/v1/responses", {}, {}, body, b"{}")


BASH = [{"type": "function", "name": "Bash", "parameters": {"type": "object"}, "strict": False}]


def test_simulated_runs_a_command_then_echoes_its_result() -> None:
    asked = {
        "tools": BASH,
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Run: ls"}]}
        ],
    }
    reply = simulated_reply(_recorded(asked))
    assert reply.tool_calls == [
        ToolCall("Bash", {"command": "ls", "description": "Run the requested command"})
    ]
    answered = {
        "tools": BASH,
        "input": [
            *asked["input"],
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Sure."}]},
            {"type": "function_call", "call_id": "c1", "name": "Bash", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "a.txt"},
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "<system-reminder>x"}],
            },
        ],
    }
    assert simulated_reply(_recorded(answered)).text == "The command finished. Output:\na.txt"


def test_simulated_notice_and_json() -> None:
    said = {"input": [{"role": "user", "content": "hello there"}]}
    assert simulated_reply(_recorded(said)).text == f"{SIMULATED_NOTICE}\n\nYou said: hello there"
    titled = {**said, "text": {"format": {"type": "json_schema", "schema": {"properties": {"title": {}}}}}}
    assert simulated_reply(_recorded(titled)).text == '{"title":""}'
