"""The image agent end to end: a target without vision gets each image described by a vision
model (one call per distinct image, cached), recorded in the ledger as image_agent rows."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from ccrouter.api.state import GATEWAY
from ccrouter.app import create_app
from ccrouter.config import Settings
from ccrouter.services import Services
from ccrouter.testing import FakeUpstream, Fault, RecordedRequest, Reply

IMAGE_A = base64.b64encode(b"\x89PNG first image " * 20).decode()
IMAGE_B = base64.b64encode(b"\x89PNG second image " * 20).decode()
URL_IMAGE = "https://images.example.invalid/diagram.png"
SESSION = "session-with-images"


def _describe(request: RecordedRequest) -> Reply:
    """The vision fake: a description naming the image it was shown."""
    source = request.body["messages"][0]["content"][0]["source"]
    seen = source.get("data") or source.get("url")
    label = {IMAGE_A: "image A", IMAGE_B: "image B", URL_IMAGE: "the URL image"}.get(seen, "unknown")
    return Reply(text=f"a picture of {label}", input_tokens=1500, output_tokens=40)


@pytest.fixture
async def vision() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream(default=_describe) as upstream:
        yield upstream


def settings(
    target: str, vision_url: str, tmp_path: Path, *, route: str = "txt,text-only", **router: Any
) -> Settings:
    return Settings.model_validate(
        {
            "providers": [
                # A model the catalog does not know: no vision.
                {"name": "txt", "type": "openai", "base_url": target + "/v1", "models": ["text-only"]},
                {"name": "vis", "type": "anthropic", "base_url": vision_url, "models": ["claude-sonnet-4-6"]},
            ],
            "router": {"default": route, "image_agent": "vis,claude-sonnet-4-6", **router},
            "prices": {"vis,claude-sonnet-4-6": {"input": 3, "output": 15}},
            "store": {"url": f"sqlite:///{tmp_path / 'usage.db'}", "flush_interval_s": 0.05},
        }
    )


@pytest.fixture
async def start() -> AsyncIterator[Any]:
    servers: list[TestServer] = []

    async def run(config: Settings) -> tuple[str, Services]:
        server = TestServer(create_app(config), host="127.0.0.1", port=0)
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/"), server.app[GATEWAY].current

    yield run
    for server in servers:
        await server.close()


def _image(data: str) -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}


def anthropic_body(stream: bool) -> dict[str, Any]:
    """Image A, then image B inside a tool result, then image A again and a URL image."""
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 200,
        "stream": stream,
        "messages": [
            {"role": "user", "content": [_image(IMAGE_A), {"type": "text", "text": "what is this?"}]},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"p": "x.png"}}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [_image(IMAGE_B)]},
                    _image(IMAGE_A),
                    {"type": "image", "source": {"type": "url", "url": URL_IMAGE}},
                    {"type": "text", "text": "compare them"},
                ],
            },
        ],
    }


def openai_body(stream: bool) -> dict[str, Any]:
    def part(data: str) -> dict[str, Any]:
        return {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}

    return {
        "model": "gpt-client",
        "max_tokens": 200,
        "stream": stream,
        "messages": [
            {"role": "user", "content": [part(IMAGE_A), {"type": "text", "text": "what is this?"}]},
            {"role": "assistant", "content": "Two more?"},
            {
                "role": "user",
                "content": [
                    part(IMAGE_B),
                    part(IMAGE_A),
                    {"type": "image_url", "image_url": {"url": URL_IMAGE}},
                    {"type": "text", "text": "compare them"},
                ],
            },
        ],
    }


async def post(url: str, client: str, body: dict[str, Any]) -> tuple[int, bytes]:
    path = "/v1/messages" if client == "anthropic" else "/v1/chat/completions"
    headers = {"anthropic-version": "2023-06-01", "x-claude-code-session-id": SESSION}
    async with aiohttp.ClientSession() as session, session.post(url + path, json=body, headers=headers) as r:
        return r.status, await r.read()


def body_for(client: str, stream: bool) -> dict[str, Any]:
    return anthropic_body(stream) if client == "anthropic" else openai_body(stream)


def _parts(request: RecordedRequest) -> list[Any]:
    """Every content part of the OpenAI-format request the target got."""
    out: list[Any] = []
    for message in request.body["messages"]:
        content = message.get("content")
        out.extend(content if isinstance(content, list) else [content])
    return out


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("client", ["anthropic", "openai"])
async def test_each_distinct_image_is_described_once_and_the_target_gets_text(
    fake: FakeUpstream, vision: FakeUpstream, start: Any, tmp_path: Path, client: str, stream: bool
) -> None:
    url, state = await start(settings(fake.url, vision.url, tmp_path))
    fake.script(Reply(text="they differ", chunk_size=100), Reply(text="again"))
    status, answer = await post(url, client, body_for(client, stream))
    assert status == 200, answer
    assert b"they differ" in answer
    # Three distinct images (A twice): three vision calls, the URL passed on as a URL (not fetched).
    shown = sorted(
        r.body["messages"][0]["content"][0]["source"].get("data")
        or r.body["messages"][0]["content"][0]["source"]["url"]
        for r in vision.requests
    )
    assert shown == sorted([IMAGE_A, IMAGE_B, URL_IMAGE])
    assert all(not r.stream for r in vision.requests)
    # The target got text only, each image replaced by its description where it stood.
    (sent,) = fake.requests
    text = orjson.dumps(sent.body).decode()
    assert "image_url" not in text
    assert IMAGE_A not in text
    assert URL_IMAGE not in text
    assert text.count("[Image: a picture of image A]") == 2
    assert text.count("[Image: a picture of image B]") == 1
    assert text.count("[Image: a picture of the URL image]") == 1
    assert "compare them" in text
    # The same image again: from the cache, no vision call.
    again = body_for(client, stream)
    again["messages"] = again["messages"][:1]
    status, answer = await post(url, client, again)
    assert status == 200, answer
    assert len(vision.requests) == 3
    assert "[Image: a picture of image A]" in orjson.dumps(fake.requests[1].body).decode()
    # The ledger: the two client requests and one image_agent row per vision call, priced.
    await state.ledger.flush()
    rows = await state.ledger.records()
    agent = [row for row in rows if row.scenario == "image_agent"]
    assert len(agent) == 3
    assert len(rows) == 5
    for row in agent:
        assert (row.provider, row.model, row.status) == ("vis", "claude-sonnet-4-6", 200)
        assert row.session_id == SESSION
        assert (row.input_tokens, row.output_tokens) == (1500, 40)
        assert row.cost_picos == (1500 * 3 + 40 * 15) * 10**6


@pytest.mark.parametrize("client", ["anthropic", "openai"])
async def test_a_vision_route_gets_the_images_untouched(
    vision: FakeUpstream, start: Any, tmp_path: Path, client: str
) -> None:
    url, state = await start(settings(vision.url, vision.url, tmp_path, route="vis,claude-sonnet-4-6"))
    status, answer = await post(url, client, body_for(client, False))
    assert status == 200, answer
    (sent,) = vision.requests  # the target itself: no vision call
    text = orjson.dumps(sent.body).decode()
    assert text.count(IMAGE_A) == 2
    assert IMAGE_B in text
    assert URL_IMAGE in text
    assert "[Image:" not in text
    await state.ledger.flush()
    assert [row.scenario for row in await state.ledger.records()] == ["default"]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("client", ["anthropic", "openai"])
async def test_a_failing_vision_model_fails_the_request_in_the_clients_envelope(
    fake: FakeUpstream, vision: FakeUpstream, start: Any, tmp_path: Path, client: str, stream: bool
) -> None:
    url, state = await start(settings(fake.url, vision.url, tmp_path))
    vision.script(*[Fault("status", status=400, body=b'{"error": {"message": "bad image"}}')] * 3)
    status, answer = await post(url, client, body_for(client, stream))
    assert status == 400, answer
    error = orjson.loads(answer)["error"]
    assert "image agent: describing an image with vis,claude-sonnet-4-6 failed" in error["message"]
    if client == "anthropic":
        assert orjson.loads(answer)["type"] == "error"
    assert fake.requests == []  # the target was never asked without the images
    await state.ledger.flush()
    rows = await state.ledger.records()
    assert {row.status for row in rows if row.scenario == "image_agent"} == {400}
    # Nothing was cached: once the vision model works again, the request goes through.
    vision.reset()
    status, answer = await post(url, client, body_for(client, stream))
    assert status == 200, answer
    assert len(vision.requests) == 3


async def test_images_past_the_bound_become_a_note(
    fake: FakeUpstream, vision: FakeUpstream, start: Any, tmp_path: Path
) -> None:
    config = settings(fake.url, vision.url, tmp_path, image_agent_max_images=1, image_agent_prompt="Say.")
    url, _ = await start(config)
    status, answer = await post(url, "anthropic", anthropic_body(False))
    assert status == 200, answer
    (shown,) = vision.requests  # one vision call, with the configured prompt
    assert shown.body["messages"][0]["content"][1] == {"type": "text", "text": "Say."}
    text = orjson.dumps(fake.requests[0].body).decode()
    assert text.count("[Image: a picture of image A]") == 2  # the first image, at both places
    assert text.count("not described: more than router.image_agent_max_images") == 2
