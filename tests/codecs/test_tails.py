"""``TailMemory``: splitting a body that ends like an earlier one gives what splitting it whole gives."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
import pytest

from ccrouter.codecs.anthropic import codec
from ccrouter.codecs.anthropic.body import decode_request_body
from ccrouter.codecs.body import DecodeCache, split_object
from ccrouter.codecs.tails import TailMemory
from ccrouter.errors import RequestError
from ccrouter.testing.claude_code import claude_code_request


def _turn(turn: int, **changes: Any) -> dict[str, Any]:
    body = claude_code_request(turns=4)
    body["messages"][-1]["content"] = f"turn {turn}"
    body.update(changes)
    return body


# What changes every turn in a Claude Code body: the tail starts after the last of them.
AFTER = frozenset({"messages", "system"})


def _remember(memory: TailMemory) -> None:
    """Two turns: a tail is noted the first time and remembered the second."""
    for turn in (100, 101):
        memory.split(orjson.dumps(_turn(turn)), AFTER, split_object)
    assert len(memory._tails) == 1


def _same(got: dict[str, msgspec.Raw], want: dict[str, msgspec.Raw]) -> None:
    assert list(got) == list(want)
    assert {k: bytes(v) for k, v in got.items()} == {k: bytes(v) for k, v in want.items()}


def test_a_repeated_tail_is_not_scanned_again_and_the_split_is_the_same() -> None:
    memory = TailMemory()
    for turn in range(5):
        body = orjson.dumps(_turn(turn))
        _same(memory.split(body, AFTER, split_object), split_object(body))
    assert memory.hits == 3  # noted, remembered, then found three times


def test_bodies_with_whitespace_are_split_whole() -> None:
    memory = TailMemory()
    for turn in range(3):
        body = orjson.dumps(_turn(turn), option=orjson.OPT_INDENT_2)
        _same(memory.split(body, AFTER, split_object), split_object(body))
    assert memory.hits == 0


def test_each_session_keeps_its_tail() -> None:
    memory = TailMemory()
    for turn in range(3):
        for session in ("a", "b"):
            body = orjson.dumps(_turn(turn, metadata={"user_id": f"user_x_session_{session}"}))
            _same(memory.split(body, AFTER, split_object), split_object(body))
    assert memory.hits == 2


def test_a_tail_that_never_repeats_is_never_copied() -> None:
    memory = TailMemory()
    for turn in range(40):
        body = orjson.dumps(_turn(turn, metadata={"user_id": f"changes every time {turn}"}))
        _same(memory.split(body, AFTER, split_object), split_object(body))
    assert memory.hits == 0
    assert not memory._tails


def test_the_tail_starts_after_the_system_prompt_when_it_follows_the_messages() -> None:
    # Claude Code's order: messages, then a system prompt whose first line changes every request.
    memory = TailMemory()
    for turn in range(4):
        body = _turn(turn)
        body["system"][0]["text"] = f"x-anthropic-billing-header: cc_version=2.1.197.{turn:03d};"
        raw = orjson.dumps(body)
        _same(memory.split(raw, AFTER, split_object), split_object(raw))
    assert memory.hits == 2
    assert memory._tails[0].key == "tools"


def test_a_short_tail_is_not_remembered() -> None:
    memory = TailMemory()
    for turn in range(3):
        body = orjson.dumps(_turn(turn, tools=[]))
        _same(memory.split(body, AFTER, split_object), split_object(body))
    assert memory.hits == 0


def test_the_same_tail_under_another_key_is_split_whole() -> None:
    memory = TailMemory()
    _remember(memory)
    body = orjson.dumps(_turn(1)).replace(b',"tools":[', b',"tool_set":[', 1)
    _same(memory.split(body, AFTER, split_object), split_object(body))
    assert memory.hits == 0


def test_a_key_in_head_and_tail_keeps_its_first_place_and_last_value() -> None:
    memory = TailMemory()
    _remember(memory)
    body = orjson.dumps(_turn(1)).replace(b'{"model"', b'{"metadata":{"user_id":"first"},"model"', 1)
    got = memory.split(body, AFTER, split_object)
    assert memory.hits == 1
    _same(got, split_object(body))


@pytest.mark.parametrize(
    "broken",
    [
        (b'"messages":[', b'"messages":[{,'),  # invalid JSON before the tail
        (b'{"model"', b'{"model":"a",,"model"'),
        (b'"messages":[', b'"messages":{"x":['),  # the head closes a nested object, not the body
    ],
)
def test_a_broken_head_fails_as_the_whole_body_fails(broken: tuple[bytes, bytes]) -> None:
    memory = TailMemory()
    _remember(memory)
    body = orjson.dumps(_turn(1)).replace(*broken, 1)
    with pytest.raises(RequestError) as whole:
        split_object(body)
    with pytest.raises(RequestError) as remembered:
        memory.split(body, AFTER, split_object)
    assert str(remembered.value) == str(whole.value)


def test_decoding_a_conversation_through_the_cache_equals_decoding_each_body() -> None:
    cache = DecodeCache()
    for turn in range(6):
        body = orjson.dumps(_turn(turn))
        got = decode_request_body(body, cache)
        assert got == codec.decode_request(orjson.loads(body))
        assert got.received is not None
        parts = got.received.parts
        assert parts is not None
        rebuilt = b"{" + b",".join(orjson.dumps(k) + b":" + bytes(v) for k, (_, v) in parts.items()) + b"}"
        assert rebuilt == body
    assert cache.tails.hits == 4
