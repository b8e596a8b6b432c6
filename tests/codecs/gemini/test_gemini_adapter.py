"""GeminiAdapter: URLs and auth for the Gemini API and Vertex AI, error bodies, and one real HTTP round
through HttpProvider against a local server speaking Gemini."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ccrouter.codecs.gemini.codec import GeminiContext
from ccrouter.config import ProviderConfig
from ccrouter.errors import ConfigError, UpstreamProtocolError, UpstreamRateLimitError
from ccrouter.messages import (
    Message,
    MessageDelta,
    MessagesRequest,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from ccrouter.providers.gemini import GeminiAdapter
from ccrouter.providers.http import HttpProvider, new_session

VERTEX_BASE = (
    "https://us-central1-aiplatform.googleapis.com/v1/projects/p1/locations/us-central1/publishers/google"
)


def _config(**fields: Any) -> ProviderConfig:
    return ProviderConfig.model_validate({"name": "gem", "type": "gemini", **fields})


def _request(messages: list[Message] | None = None) -> MessagesRequest:
    return MessagesRequest(
        model="claude-sonnet-4-5",
        messages=messages or [Message(role="user", content=[TextBlock(text="Hi")])],
        max_tokens=100,
    )


def test_gemini_api_url_and_key_header() -> None:
    adapter = GeminiAdapter(_config(api_key="AIza-secret"))
    call = adapter.build(_request(), "gemini-2.5-flash", stream=False)
    assert (
        call.url == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    )
    assert call.headers == {"content-type": "application/json", "x-goog-api-key": "AIza-secret"}
    assert "AIza-secret" not in call.url
    assert orjson.loads(call.body)["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]
    assert isinstance(call.context, GeminiContext)
    assert call.context.model == "gemini-2.5-flash"


def test_stream_url_custom_base_and_models_prefix() -> None:
    adapter = GeminiAdapter(
        _config(api_key="k", base_url="http://127.0.0.1:9/v1beta/", headers={"x-extra": "1"})
    )
    call = adapter.build(_request(), "models/gemini-2.5-pro", stream=True)
    assert call.url == "http://127.0.0.1:9/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    assert call.headers["x-extra"] == "1"


def test_vertex_url_bearer_token_and_no_function_ids() -> None:
    adapter = GeminiAdapter(_config(vendor="vertex", base_url=VERTEX_BASE, api_key="ya29.token"))
    request = _request(
        messages=[
            Message(role="user", content=[TextBlock(text="run")]),
            Message(role="assistant", content=[ToolUseBlock(id="toolu_01X", name="Bash", input={"c": 1})]),
            Message(
                role="user", content=[ToolResultBlock(tool_use_id="toolu_01X", content=[TextBlock("ok")])]
            ),
        ]
    )
    call = adapter.build(request, "gemini-2.5-pro", stream=True)
    assert call.url == f"{VERTEX_BASE}/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    assert call.headers["Authorization"] == "Bearer ya29.token"
    assert "x-goog-api-key" not in call.headers
    assert b'"id"' not in call.body
    assert b'"functionResponse":{"name":"Bash"' in call.body


def test_vertex_guessed_from_base_url() -> None:
    adapter = GeminiAdapter(_config(base_url=VERTEX_BASE, api_key="ya29.token"))
    assert adapter.build(_request(), "m", stream=False).headers["Authorization"] == "Bearer ya29.token"


def test_vertex_needs_base_url() -> None:
    with pytest.raises(ConfigError, match=r"providers\.gem\.base_url"):
        GeminiAdapter(_config(vendor="vertex", api_key="t"))


def test_no_key_no_auth_header() -> None:
    call = GeminiAdapter(_config(base_url="http://127.0.0.1:9")).build(_request(), "m", stream=False)
    assert call.headers == {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"error": {"code": 400, "message": "Invalid JSON payload.", "status": "INVALID_ARGUMENT"}}',
            "INVALID_ARGUMENT: Invalid JSON payload.",
        ),
        (
            b'[{"error": {"code": 429, "message": "Quota exceeded.", "status": "RESOURCE_EXHAUSTED"}}]',
            "RESOURCE_EXHAUSTED: Quota exceeded.",
        ),
        (b"<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
        (b"", "HTTP 502"),
        (b'{"error": {"message": "key AIza-secret rejected"}}', "key [redacted] rejected"),
    ],
)
def test_error_message(body: bytes, message: str) -> None:
    assert GeminiAdapter(_config(api_key="AIza-secret")).error_message(502, body) == message


def test_parse_response_needs_its_own_context() -> None:
    adapter = GeminiAdapter(_config(api_key="k"))
    call = adapter.build(_request(), "m", stream=False)
    body = b'{"candidates": [{"content": {"parts": [{"text": "Yo"}]}, "finishReason": "STOP"}]}'
    response = adapter.parse_response(body, call)
    assert response.content == [TextBlock(text="Yo")]
    call.context = None
    with pytest.raises(TypeError):
        adapter.parse_response(body, call)
    with pytest.raises(UpstreamProtocolError, match="gem: response is not JSON"):
        adapter.parse_response(b"oops", adapter.build(_request(), "m", stream=False))


# --------------------------------------------------------------------------- through HTTP


def _chunk(parts: list[dict[str, Any]], finish: str | None = None) -> bytes:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    usage = {"promptTokenCount": 11, "candidatesTokenCount": 3, "totalTokenCount": 14}
    return b"data: " + orjson.dumps({"candidates": [candidate], "usageMetadata": usage}) + b"\r\n\r\n"


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    async def generate(request: web.Request) -> web.StreamResponse:
        seen.append(
            {
                "path": request.path_qs,
                "key": request.headers.get("x-goog-api-key"),
                "body": await request.json(),
            }
        )
        if request.match_info["model"] == "gemini-limited":
            return web.json_response(
                {"error": {"code": 429, "message": "Quota exceeded.", "status": "RESOURCE_EXHAUSTED"}},
                status=429,
                headers={"retry-after": "7"},
            )
        if request.query.get("alt") != "sse":
            return web.json_response(
                {"candidates": [{"content": {"parts": [{"text": "Whole"}]}, "finishReason": "STOP"}]}
            )
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        await response.write(_chunk([{"text": "Bon"}]))
        await response.write(_chunk([{"text": "jour"}], finish="STOP"))
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1beta/models/{model}:{method}", generate)
    server = TestServer(app)
    await server.start_server()
    try:
        yield str(server.make_url("/v1beta")), seen
    finally:
        await server.close()


async def test_http_stream_and_complete(upstream: tuple[str, list[dict[str, Any]]]) -> None:
    base_url, seen = upstream
    config = _config(base_url=base_url, api_key="AIza-k")
    provider = HttpProvider(config, GeminiAdapter(config), new_session())
    try:
        events = [event async for batch in provider.stream(_request(), "gemini-2.5-flash") for event in batch]
        whole = await provider.complete(_request(), "gemini-2.5-flash")
        with pytest.raises(
            UpstreamRateLimitError, match=r"gem: RESOURCE_EXHAUSTED: Quota exceeded\."
        ) as caught:
            await provider.complete(_request(), "gemini-limited")
    finally:
        await provider.aclose()
    final = events[-2]
    assert isinstance(final, MessageDelta)
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == 11
    assert whole.content == [TextBlock(text="Whole")]
    assert caught.value.retry_after == 7
    assert [s["path"] for s in seen] == [
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        "/v1beta/models/gemini-2.5-flash:generateContent",
        "/v1beta/models/gemini-limited:generateContent",
    ]
    assert seen[0]["key"] == "AIza-k"
    assert seen[0]["body"]["generationConfig"] == {"maxOutputTokens": 100}
