"""Malformed bodies a fuzzer found answered 500: each is a 4xx in the client's own envelope, and the
gateway keeps serving (issue 11, "Bad input")."""

from __future__ import annotations

import aiohttp
import orjson
import pytest
from gateway_support import GatewayFactory, settings_for

from ccrouter.testing import FakeUpstream, Reply

MESSAGES = "/v1/messages"
COUNT = "/v1/messages/count_tokens"
CHAT = "/v1/chat/completions"
GOOD = {"model": "claude-sonnet-4-6", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
OPENAI_GOOD = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
# The nesting limit the README documents (levels of arrays and objects, the body itself one).
MAX_DEPTH = 128


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _with_input(value: bytes) -> bytes:
    """A Messages body whose history holds a tool call with ``value`` (raw JSON) as its input."""
    return (
        b'{"model":"claude-sonnet-4-6","max_tokens":5,"messages":[{"role":"user","content":"go"},'
        b'{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"Read","input":{"a":'
        + value
        + b'}}]},{"role":"user","content":"hi"}]}'
    )


CASES = [
    # Invalid UTF-8 inside a JSON string (a raw 0xe9 byte).
    (
        MESSAGES,
        b'{"model":"claude-sonnet-4-6","max_tokens":5,"messages":[{"role":"user","content":"caf\xe9"}]}',
    ),
    (COUNT, b'{"model":"m","messages":[{"role":"user","content":"caf\xe9"}]}'),
    (CHAT, b'{"model":"gpt-test","messages":[{"role":"user","content":"caf\xe9"}]}'),
    # Numbers beyond a double.
    (
        MESSAGES,
        b'{"model":"claude-sonnet-4-6","max_tokens":1e400,"messages":[{"role":"user","content":"hi"}]}',
    ),
    (COUNT, b'{"a": 1e99999}'),
    (CHAT, b'{"model":"gpt-test","max_tokens":1e400,"messages":[{"role":"user","content":"hi"}]}'),
    # JSON nested about 1,000 deep, and just past the documented limit where the parsers would accept
    # it but serialising it again would fail.
    (MESSAGES, b'{"model":"m","max_tokens":5,"messages":[{"role":"user","content":' + _nested(1000) + b"}]}"),
    (COUNT, b'{"model":"m","messages":[{"role":"user","content":' + _nested(1000) + b"}]}"),
    (CHAT, b'{"model":"gpt-test","messages":[{"role":"user","content":' + _nested(1000) + b"}]}"),
    (MESSAGES, _with_input(_nested(MAX_DEPTH))),
    (COUNT, _with_input(_nested(MAX_DEPTH))),
    # A role that is an object or a list.
    (MESSAGES, orjson.dumps({**GOOD, "messages": [{"role": {"a": 1}, "content": "hi"}]})),
    (MESSAGES, orjson.dumps({**GOOD, "messages": [{"role": ["user"], "content": "hi"}]})),
    (COUNT, orjson.dumps({**GOOD, "messages": [{"role": ["user"], "content": "hi"}]})),
    (CHAT, orjson.dumps({**OPENAI_GOOD, "messages": [{"role": {"a": 1}, "content": "hi"}]})),
    # stop_sequences that is not a list (of strings).
    (MESSAGES, orjson.dumps({**GOOD, "stop_sequences": "stop"})),
    (MESSAGES, orjson.dumps({**GOOD, "stop_sequences": 5})),
    (MESSAGES, orjson.dumps({**GOOD, "stop_sequences": [1]})),
    (CHAT, orjson.dumps({**OPENAI_GOOD, "stop": 5})),
    # A tool description that is not a string.
    (COUNT, orjson.dumps({**GOOD, "tools": [{"name": "t", "description": 5, "input_schema": {}}]})),
    (MESSAGES, orjson.dumps({**GOOD, "tools": [{"name": "t", "description": ["a"], "input_schema": {}}]})),
]


async def _post(session: aiohttp.ClientSession, url: str, body: bytes) -> tuple[int, object]:
    headers = {"content-type": "application/json"}
    async with session.post(url, data=body, headers=headers) as response:
        return response.status, orjson.loads(await response.read())


def _is_envelope(path: str, body: object) -> bool:
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return False
    error = body["error"]
    if path == CHAT:
        return isinstance(error.get("message"), str) and isinstance(error.get("type"), str)
    return body.get("type") == "error" and isinstance(error.get("message"), str)


@pytest.mark.parametrize("wire", ["openai", "anthropic", "gemini"])
async def test_malformed_bodies_are_4xx_in_the_clients_envelope(
    fake: FakeUpstream, gateway: GatewayFactory, wire: str
) -> None:
    url = await gateway(settings_for(fake.url, wire))
    async with aiohttp.ClientSession() as session:
        for path, body in CASES:
            status, answer = await _post(session, url + path, body)
            assert status == 400, (path, body[:120], answer)
            assert _is_envelope(path, answer), (path, body[:120], answer)
            assert answer["error"]["type"] == "invalid_request_error"  # type: ignore[index]
        fake.script(Reply(text="still serving"))
        assert (await _post(session, url + MESSAGES, orjson.dumps(GOOD)))[0] == 200


async def test_nesting_up_to_the_limit_is_served(fake: FakeUpstream, gateway: GatewayFactory) -> None:
    # The body's own levels (object, messages, message, content, block, input) plus the value's.
    inside = MAX_DEPTH - 6
    url = await gateway(settings_for(fake.url, "gemini"))
    async with aiohttp.ClientSession() as session:
        fake.script(Reply(text="deep"))
        status, answer = await _post(session, url + MESSAGES, _with_input(_nested(inside)))
        assert status == 200, answer
        assert (await _post(session, url + COUNT, _with_input(_nested(inside))))[0] == 200
        assert (await _post(session, url + MESSAGES, _with_input(_nested(inside + 1))))[0] == 400


@pytest.mark.parametrize(
    ("path", "earlier", "bad"),
    [
        # An empty tools list decodes to []; a message that is the same bytes must not be handed that
        # cached value (a list, not a Message), but be refused as it is on a fresh gateway.
        (MESSAGES, {**GOOD, "tools": []}, {**GOOD, "messages": [[], {"role": "user", "content": "hi"}]}),
        (COUNT, {**GOOD, "tools": []}, {**GOOD, "messages": [[], {"role": "user", "content": "hi"}]}),
        (CHAT, {**OPENAI_GOOD, "tools": []}, {**OPENAI_GOOD, "messages": [[], *OPENAI_GOOD["messages"]]}),
        # A long system block's bytes sent again as a message.
        (
            MESSAGES,
            {**GOOD, "system": [{"type": "text", "text": "s" * 600}]},
            {**GOOD, "messages": [{"type": "text", "text": "s" * 600}, {"role": "user", "content": "hi"}]},
        ),
    ],
)
async def test_an_earlier_request_does_not_change_how_a_bad_one_is_answered(
    fake: FakeUpstream, gateway: GatewayFactory, path: str, earlier: dict[str, object], bad: dict[str, object]
) -> None:
    url = await gateway(settings_for(fake.url, "anthropic"))
    async with aiohttp.ClientSession() as session:
        fresh = await _post(session, url + path, orjson.dumps(bad))
        assert fresh[0] == 400
        fake.script(Reply(text="ok"))
        assert (await _post(session, url + path, orjson.dumps(earlier)))[0] == 200
        assert await _post(session, url + path, orjson.dumps(bad)) == fresh


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/responses", {"model": "m", "input": "hi", "max_output_tokens": "9" * 100_000}),
        (
            "/v1beta/models/m:generateContent",
            {"contents": [], "generationConfig": {"temperature": "x" * 100_000}},
        ),
    ],
    ids=["responses", "gemini"],
)
async def test_an_error_quoting_a_huge_value_stays_short(
    fake: FakeUpstream, gateway: GatewayFactory, path: str, body: dict[str, object]
) -> None:
    url = await gateway(settings_for(fake.url, "anthropic"))
    async with aiohttp.ClientSession() as session:
        status, answer = await _post(session, url + path, orjson.dumps(body))
    assert status == 400, answer
    message = answer["error"]["message"]  # type: ignore[index]
    assert 0 < len(message) <= 2048
