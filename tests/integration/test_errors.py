"""Bad input gets a clear Anthropic-format 4xx (OpenAI-format under /v1/chat/completions), and the
gateway keeps serving afterwards."""

from __future__ import annotations

import aiohttp
import orjson
import pytest
from gateway_support import GatewayFactory, settings_for

from ccrouter.testing import FakeUpstream, Fault, Reply

GOOD = {"model": "claude-sonnet-4-6", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}


async def _post(url: str, body: bytes, path: str = "/v1/messages") -> tuple[int, dict[str, object]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + path, data=body, headers={"content-type": "application/json"}) as response,
    ):
        return response.status, orjson.loads(await response.read())


def _anthropic_error(body: dict[str, object]) -> tuple[str, str]:
    assert body["type"] == "error"
    error = body["error"]
    assert isinstance(error, dict)
    return error["type"], error["message"]


@pytest.mark.parametrize(
    ("body", "status", "error_type", "fragment"),
    [
        (b"{not json", 400, "invalid_request_error", "not valid JSON"),
        (b"", 400, "invalid_request_error", "empty"),
        (b"[1, 2]", 400, "invalid_request_error", "JSON object"),
        (orjson.dumps({"model": "x", "max_tokens": 5}), 400, "invalid_request_error", "messages"),
        (orjson.dumps({**GOOD, "model": "nope,some-model"}), 400, "invalid_request_error", "nope"),
        (orjson.dumps({**GOOD, "model": "up,missing-model"}), 400, "invalid_request_error", "missing-model"),
    ],
)
async def test_bad_requests(
    fake: FakeUpstream, gateway: GatewayFactory, body: bytes, status: int, error_type: str, fragment: str
) -> None:
    url = await gateway(settings_for(fake.url, "openai"))
    got_status, got = await _post(url, body)
    assert got_status == status
    kind, message = _anthropic_error(got)
    assert kind == error_type
    assert fragment in message
    fake.script(Reply(text="still serving"))
    ok_status, ok = await _post(url, orjson.dumps(GOOD))
    assert ok_status == 200
    assert ok["content"] == [{"type": "text", "text": "still serving"}]


async def test_oversized_body(fake: FakeUpstream, gateway: GatewayFactory) -> None:
    url = await gateway(settings_for(fake.url, "openai", server={"max_body_bytes": 10_000}))
    big = orjson.dumps({**GOOD, "messages": [{"role": "user", "content": "x" * 20_000}]})
    status, body = await _post(url, big)
    assert status == 413
    kind, message = _anthropic_error(body)
    assert kind == "request_too_large"
    assert "max_body_bytes" in message
    fake.script(Reply(text="fine"))
    assert (await _post(url, orjson.dumps(GOOD)))[0] == 200


async def test_unknown_path_is_anthropic_404(fake: FakeUpstream, gateway: GatewayFactory) -> None:
    url = await gateway(settings_for(fake.url, "openai"))
    status, body = await _post(url, b"{}", path="/v1/nothing-here")
    assert status == 404
    assert _anthropic_error(body)[0] == "not_found_error"


async def test_openai_front_errors_use_openai_envelope(fake: FakeUpstream, gateway: GatewayFactory) -> None:
    url = await gateway(settings_for(fake.url, "openai"))
    status, body = await _post(url, b"{oops", path="/v1/chat/completions")
    assert status == 400
    error = body["error"]
    assert isinstance(error, dict)
    assert "not valid JSON" in str(error["message"])


@pytest.mark.parametrize(
    ("fault", "status", "error_type"),
    [
        (Fault(kind="status", status=429, retry_after=7), 429, "rate_limit_error"),
        (Fault(kind="status", status=529), 529, "overloaded_error"),
        (Fault(kind="status", status=500), 500, "api_error"),
        (Fault(kind="status", status=400), 400, "invalid_request_error"),
        (Fault(kind="drop_before_first_byte"), 502, "api_error"),
    ],
)
async def test_upstream_errors_map_to_anthropic_errors(
    fake: FakeUpstream, gateway: GatewayFactory, fault: Fault, status: int, error_type: str
) -> None:
    url = await gateway(settings_for(fake.url, "openai"))
    fake.script(fault)
    got_status, body = await _post(url, orjson.dumps(GOOD))
    assert got_status == status
    kind, message = _anthropic_error(body)
    assert kind == error_type
    assert "sk-test-secret-key" not in message
    assert message.startswith("up:")


async def test_retry_after_is_passed_on(fake: FakeUpstream, gateway: GatewayFactory) -> None:
    url = await gateway(settings_for(fake.url, "openai"))
    fake.script(Fault(kind="status", status=429, retry_after=7))
    async with aiohttp.ClientSession() as session, session.post(url + "/v1/messages", json=GOOD) as response:
        assert response.status == 429
        assert response.headers["retry-after"] == "7"


async def test_stream_broken_after_first_byte_ends_with_error_event(
    fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    url = await gateway(settings_for(fake.url, "openai"))
    fake.script(Fault(kind="drop_mid_stream", after_chunks=3))
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/v1/messages", json={**GOOD, "stream": True}) as response,
    ):
        assert response.status == 200
        text = (await response.read()).decode()
    assert "event: message_start" in text
    assert text.rstrip().splitlines()[-2] == "event: error"
    assert "overloaded_error" in text.rstrip().splitlines()[-1]
    assert "event: message_stop" not in text
