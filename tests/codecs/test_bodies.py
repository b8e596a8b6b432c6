"""Decoding bodies from bytes with the history cache gives exactly what the dict decoders give."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson
import pytest

from ccrouter.codecs.anthropic import codec
from ccrouter.codecs.anthropic.body import decode_request_body
from ccrouter.codecs.body import DecodeCache
from ccrouter.codecs.openai.body import decode_openai_body
from ccrouter.codecs.openai.front import decode_request as decode_openai
from ccrouter.errors import RequestError
from ccrouter.testing.claude_code import claude_code_request

GOLDEN = Path(__file__).parent.parent / "golden"
BODIES = sorted(p for p in (GOLDEN / "anthropic" / "requests").glob("*.json") if ".expected." not in p.name)
OPENAI_BODIES = sorted(
    p for p in (GOLDEN / "openai" / "front_requests").glob("*.json") if ".expected." not in p.name
)


@pytest.mark.parametrize("path", BODIES, ids=lambda p: p.stem)
def test_golden_bodies_decode_as_the_dict_decoder_does(path: Path) -> None:
    body = path.read_bytes()
    expected = codec.decode_request(orjson.loads(body))
    cache = DecodeCache()
    assert decode_request_body(body) == expected
    assert decode_request_body(body, cache) == expected
    assert decode_request_body(body, cache) == expected  # from the cache


def test_a_grown_history_decodes_only_its_new_messages() -> None:
    cache = DecodeCache()
    first = orjson.dumps(claude_code_request(turns=10))
    decode_request_body(first, cache)
    misses = cache.misses
    grown = claude_code_request(turns=11)
    decoded = decode_request_body(orjson.dumps(grown), cache)
    assert decoded == codec.decode_request(grown)
    # Looked up and missed: the new assistant turn, and the previous last message, which was not
    # cached (it had Claude Code's moving cache_control marker). The new last message is not looked
    # up at all; the rest of the history and the tools were cached.
    assert cache.misses - misses == 2
    assert decoded.received is not None
    assert decoded.received.body == grown


def test_cached_parts_are_not_changed_by_a_later_edit() -> None:
    cache = DecodeCache()
    body = orjson.dumps(claude_code_request())
    first = decode_request_body(body, cache)
    # Edits downstream are copy-on-write; a request's own lists are its own.
    first.messages.pop()
    first.tools.pop()
    second = decode_request_body(body, cache)
    assert second == codec.decode_request(orjson.loads(body))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "request body is empty"),
        (b'{"model": "m", "messages": [}', "request body is not valid JSON"),
        (b'{"model": "m"} trailing', "request body is not valid JSON"),
        (b"[1, 2]", "request body must be a JSON object, got list"),
        (b'{"model": "m", "max_tokens": 5, "messages": {}}', "messages: Input should be a valid list"),
        (b'{"model": "m", "max_tokens": 5, "messages": [{"role": "x"}]}', "messages.0.role"),
        (
            b'{"model": "m", "max_tokens": 5, "messages": [], "tools": 3}',
            "tools: Input should be a valid list",
        ),
    ],
)
def test_bad_bodies_fail_as_the_dict_decoder_does(body: bytes, message: str) -> None:
    with pytest.raises(RequestError, match=message):
        decode_request_body(body, DecodeCache())


def test_the_cache_is_bounded() -> None:
    cache = DecodeCache(max_bytes=60_000)
    for turns in range(1, 30):
        decode_request_body(orjson.dumps(claude_code_request(turns=turns, model=f"m{turns}")), cache)
    held = sum(len(generation) for generation in (cache._young, cache._old))
    assert held < 60


def test_the_last_message_is_not_cached() -> None:
    cache = DecodeCache()
    for turn in range(50):
        body = claude_code_request(turns=3)
        body["messages"][-1]["content"] = f"turn {turn}"
        decode_request_body(orjson.dumps(body), cache)
    # The 7 messages before the last one, the tools and the long system block: nothing per turn.
    assert len(cache._young) + len(cache._old) == 9


def test_system_blocks_are_cached_block_by_block() -> None:
    cache = DecodeCache()
    first = claude_code_request(turns=2)
    second = claude_code_request(turns=2)
    second["system"][0]["text"] = "x-anthropic-billing-header: cc_version=2.1.197.zzz; cch=other;"
    one = decode_request_body(orjson.dumps(first), cache)
    two = decode_request_body(orjson.dumps(second), cache)
    assert one.system[0] != two.system[0]
    # The long prompt is the same object: the token counter and the encoders reuse it. Short blocks
    # are decoded anew (cheap, and Claude Code's billing line never recurs).
    assert one.system[2] is two.system[2]
    assert one.system[1] == two.system[1]
    assert one.system[1] is not two.system[1]
    assert two == codec.decode_request(orjson.loads(orjson.dumps(second)))


def test_a_bad_system_block_is_reported_with_its_place() -> None:
    body = claude_code_request(turns=1)
    body["system"].append({"type": "image"})
    with pytest.raises(RequestError, match=r"system\.3"):
        decode_request_body(orjson.dumps(body), DecodeCache())


@pytest.mark.parametrize("path", BODIES, ids=lambda p: p.stem)
def test_passthrough_bytes_reuse_the_clients_fields(path: Path) -> None:
    request = decode_request_body(path.read_bytes(), DecodeCache())
    for stream in (False, True):
        sent = codec.encode_request_json(request, "upstream-model", stream=stream)
        assert orjson.loads(sent) == codec.encode_request(request, "upstream-model", stream=stream)


def test_passthrough_bytes_are_the_clients_where_nothing_changed() -> None:
    body = (
        b'{"model":"claude-x","max_tokens":64,  "messages":[{"role":"user","content":"hi" }],"z":[1, 2.50]}'
    )
    request = decode_request_body(body, DecodeCache())
    sent = codec.encode_request_json(request, "upstream-model", stream=False)
    # model and stream are ours; the rest is the client's bytes, spacing and number spelling included.
    assert sent == (
        b'{"model":"upstream-model","max_tokens":64,"messages":[{"role":"user","content":"hi" }],'
        b'"z":[1, 2.50],"stream":false}'
    )
    # An edited field is serialised anew; the others stay the client's.
    edited = dataclasses.replace(request, extra={**request.extra, "z": [3]})
    assert codec.encode_request_json(edited, "m", stream=True) == (
        b'{"model":"m","max_tokens":64,"messages":[{"role":"user","content":"hi" }],"z":[3],"stream":true}'
    )


def test_many_tiny_messages_stay_within_the_budget() -> None:
    cache = DecodeCache(max_bytes=100_000)
    for turn in range(2_000):
        messages = [{"role": "user", "content": f"m{turn}.{i}"} for i in range(10)]
        body = {"model": "m", "max_tokens": 5, "messages": messages}
        decode_request_body(orjson.dumps(body), cache)
    # Each entry is charged at least its fixed overhead, so a 100 KB budget holds at most ~200.
    assert len(cache._young) + len(cache._old) <= 100_000 // 512 + 1


# --------------------------------------------------------------------------- OpenAI front


@pytest.mark.parametrize("path", OPENAI_BODIES, ids=lambda p: p.stem)
def test_openai_golden_bodies_decode_as_the_dict_decoder_does(path: Path) -> None:
    body = path.read_bytes()
    expected = decode_openai(orjson.loads(body))
    cache = DecodeCache()
    for _ in range(3):  # uncached, then from the cache
        assert decode_openai_body(body, cache) == expected
    assert decode_openai_body(body) == expected


def test_openai_tool_results_join_fresh_messages_not_the_cached_ones() -> None:
    # A tool result joins the user message before it; that must not grow a cached item.
    cache = DecodeCache()
    history = [
        {"role": "user", "content": "list files"},
        {"role": "assistant", "content": None, "tool_calls": [_call("c1")]},
        {"role": "tool", "tool_call_id": "c1", "content": "a.txt"},
        {"role": "user", "content": "thanks"},
        {"role": "assistant", "content": "ok"},
    ]
    for turn in range(3):
        messages = [*history, {"role": "user", "content": f"turn {turn}"}]
        body = orjson.dumps({"model": "m", "messages": messages, "tools": [_tool()]})
        assert decode_openai_body(body, cache) == decode_openai(orjson.loads(body))
    assert cache.hits >= 2 * 6


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "request body is empty"),
        (b'{"model": "m", "messages": [}', "request body is not valid JSON"),
        (b"[1]", "request body must be a JSON object, got list"),
        (b'{"model": "m", "messages": []}', "messages: required"),
        (b'{"model": "m", "messages": {}}', "messages: required"),
        (
            b'{"model": "m", "messages": [{"role": "x"}, {"role": "user", "content": "hi"}]}',
            "messages\\[0\\].role",
        ),
    ],
)
def test_openai_bad_bodies_fail_as_the_dict_decoder_does(body: bytes, message: str) -> None:
    with pytest.raises(RequestError, match=message):
        decode_openai_body(body, DecodeCache())


def _call(call_id: str) -> dict[str, object]:
    return {"id": call_id, "type": "function", "function": {"name": "ls", "arguments": "{}"}}


def _tool() -> dict[str, object]:
    return {"type": "function", "function": {"name": "ls", "parameters": {"type": "object"}}}


def test_bytes_decoded_by_one_decoder_are_not_handed_to_another() -> None:
    # An empty tools list and an empty message are the same bytes, ``[]``: the message must be refused
    # as on a fresh cache, not be given the cached tools value.
    cache = DecodeCache()
    decode_request_body(b'{"model": "m", "max_tokens": 5, "messages": [], "tools": []}', cache)
    bad = b'{"model": "m", "max_tokens": 5, "messages": [[], {"role": "user", "content": "hi"}]}'
    with pytest.raises(RequestError, match=r"messages\.0: Input should be a valid dictionary"):
        decode_request_body(bad, cache)


def test_a_part_larger_than_the_part_limit_is_decoded_but_not_kept() -> None:
    cache = DecodeCache(max_part_bytes=1000)
    big = {"role": "user", "content": "x" * 2000}
    body = orjson.dumps(
        {"model": "m", "max_tokens": 5, "messages": [big, big, {"role": "user", "content": "hi"}]}
    )
    decode_request_body(body, cache)
    assert cache.hits == 0
    assert not cache._young
    assert not cache._old
