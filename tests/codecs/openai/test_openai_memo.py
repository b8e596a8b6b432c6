"""EncodeMemo: a request built from the memo is byte for byte the one built without it, and leaves the
same tool name/id maps. Requests are decoded from bytes through a shared DecodeCache, as the server
does, so history messages and tools are the shared objects the memo keys on."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ccrouter.codecs.anthropic.body import decode_request_body
from ccrouter.codecs.body import DecodeCache
from ccrouter.codecs.openai.chat import Dialect, encode_request
from ccrouter.codecs.openai.memo import EncodeMemo
from ccrouter.codecs.openai.toolnames import ToolNames
from ccrouter.testing.claude_code import claude_code_request
from golden import GoldenDir

OPENAI = GoldenDir("openai")
ANTHROPIC_CASES = [case for case in OPENAI.cases("requests") if "anthropic" in OPENAI.load("requests", case)]
DIALECTS = {
    "plain": Dialect(),
    "deepseek": Dialect(max_tokens_cap=8192, echo_reasoning_content=True, reasoning_style="none"),
    "groq": Dialect(strip_schema_keys=frozenset({"$schema", "$id", "$comment"}), reasoning_style="none"),
    "openrouter_claude": Dialect(reasoning_style="openrouter", keep_cache_control=True),
}
_MAPS = ("_names_out", "_names_in", "_ids_out", "_ids_in")


def maps(names: ToolNames) -> dict[str, dict[str, str]]:
    return {slot: getattr(names, slot) for slot in _MAPS}


def dialect_from(data: dict[str, Any]) -> Dialect:
    fields = dict(data)
    if "strip_schema_keys" in fields:
        fields["strip_schema_keys"] = frozenset(fields["strip_schema_keys"])
    return Dialect(**fields)


def with_next_turn(body: dict[str, Any], number: int) -> dict[str, Any]:
    """``body`` one exchange later: its last message becomes history."""
    turn = [
        {"role": "assistant", "content": [{"type": "text", "text": f"answer {number}"}]},
        {"role": "user", "content": [{"type": "text", "text": f"question {number}"}]},
    ]
    return {**body, "messages": [*body["messages"], *turn]}


class Checker:
    """Encodes bodies with and without one memo and compares the results."""

    def __init__(self, memo: EncodeMemo | None = None) -> None:
        self.cache = DecodeCache()
        self.memo = memo if memo is not None else EncodeMemo()

    def check(self, body: dict[str, Any], dialect: Dialect, model: str = "m", stream: bool = False) -> bytes:
        raw = orjson.dumps(body)
        expected, expected_names = encode_request(
            decode_request_body(raw), model, stream=stream, dialect=dialect
        )
        request = decode_request_body(raw, self.cache)
        assert request.shared_parts
        actual, names = encode_request(request, model, stream=stream, dialect=dialect, memo=self.memo)
        assert orjson.dumps(actual) == orjson.dumps(expected)
        assert maps(names) == maps(expected_names)
        return orjson.dumps(actual)


def golden_body(case: str) -> tuple[dict[str, Any], Dialect, str, bool]:
    fixture = OPENAI.load("requests", case)
    return (
        fixture["anthropic"],
        dialect_from(fixture["dialect"]),
        fixture["model"],
        fixture.get("stream", False),
    )


@pytest.mark.parametrize("case", ANTHROPIC_CASES)
def test_golden_requests_are_the_same_through_the_memo(case: str) -> None:
    body, dialect, model, stream = golden_body(case)
    checker = Checker()
    first = checker.check(body, dialect, model, stream)
    assert checker.check(body, dialect, model, stream) == first
    assert checker.check(body, dialect, model, stream) == first
    for number in range(3):
        body = with_next_turn(body, number)
        checker.check(body, dialect, model, stream)
        checker.check(body, dialect, model, stream)


@pytest.mark.parametrize("dialect", DIALECTS.values(), ids=DIALECTS.keys())
@pytest.mark.parametrize("case", ANTHROPIC_CASES)
def test_golden_requests_in_each_dialect(case: str, dialect: Dialect) -> None:
    body, _, model, stream = golden_body(case)
    checker = Checker()
    for _ in range(3):
        checker.check(body, dialect, model, stream)
    checker.check(with_next_turn(body, 1), dialect, model, stream)


def test_claude_code_request_hits_for_history_and_tools() -> None:
    body = claude_code_request()
    checker = Checker()
    checker.check(body, Dialect())
    misses = checker.memo.misses
    assert misses == len(body["messages"])  # each history message, and the tools
    checker.check(body, Dialect())
    checker.check(body, Dialect())
    assert checker.memo.misses == misses
    assert checker.memo.hits == 2 * 2  # each time: the history as one run, and the tools
    follow_up = with_next_turn(body, 1)
    checker.check(follow_up, Dialect())
    assert checker.memo.misses == misses + 2  # the old last message and the new assistant message
    checker.check(with_next_turn(follow_up, 2), Dialect())


def test_a_rewound_conversation_is_translated_as_itself() -> None:
    # Same first message, a different history after it (Claude Code's /rewind, or a compaction).
    body = claude_code_request()
    checker = Checker()
    checker.check(body, Dialect())
    checker.check(with_next_turn(body, 1), Dialect())
    rewound = {**body, "messages": [*body["messages"][:3], *body["messages"][5:]]}
    checker.check(rewound, Dialect())
    checker.check(with_next_turn(rewound, 2), Dialect())


def test_dialects_alternating_on_one_memo() -> None:
    body = claude_code_request()
    checker = Checker()
    for _ in range(2):
        for dialect in DIALECTS.values():
            checker.check(body, dialect)
            checker.check(body, Dialect(**{f: getattr(dialect, f) for f in dialect.__slots__}))
            body = with_next_turn(body, len(body["messages"]))


def _tool_use(name: str, call_id: str) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": f"use {name}", "signature": "s"},
            {"type": "tool_use", "id": call_id, "name": name, "input": {"q": name}},
        ],
    }


def _result(call_id: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call_id, "content": "done"}]}


_DOTTED = "mcp.server/search"  # invalid: rewritten to mcp_server_search
_CLASH = "mcp_server_search"  # valid, and the rewritten form of the name above
_LONG = "mcp__" + "x" * 70
_TOOLS = [
    {
        "name": name,
        "input_schema": {"$schema": "s", "type": "object", "properties": {"q": {"type": "string"}}},
    }
    for name in (_DOTTED, _LONG, "Read")
]


@pytest.mark.parametrize("dialect", DIALECTS.values(), ids=DIALECTS.keys())
def test_rewritten_names_and_ids_and_a_clash_that_changes_them(dialect: Dialect) -> None:
    """The same message and tool objects, seen after different names: a replayed name that would now
    be rewritten differently makes the memo translate again."""
    dotted = [_tool_use(_DOTTED, "call:1/a.b"), _result("call:1/a.b")]
    long_call = [_tool_use(_LONG, "toolu_" + "9" * 60), _result("toolu_" + "9" * 60)]
    first = {"model": "m", "max_tokens": 100, "tools": _TOOLS, "messages": [
        {"role": "user", "content": "start"}, *dotted, *long_call, {"role": "user", "content": "go on"}
    ]}  # fmt: skip
    # The clashing name comes first: the dotted name's wire form is now taken.
    clash = [_tool_use(_CLASH, "call_0"), _result("call_0")]
    second = {**first, "messages": [first["messages"][0], *clash, *first["messages"][1:]]}
    checker = Checker()
    for body in (first, second, first, second, with_next_turn(second, 1)):
        checker.check(body, dialect)
    request = decode_request_body(orjson.dumps(second), checker.cache)
    body, names = encode_request(request, "m", stream=False, dialect=dialect, memo=checker.memo)
    out = orjson.loads(orjson.dumps(body))
    wire = {call["function"]["name"] for m in out["messages"] for call in m.get("tool_calls", ())}
    assert len(wire) == 3
    assert {names.from_wire_name(name) for name in wire} == {_CLASH, _DOTTED, _LONG}


def test_pending_calls_are_part_of_the_key() -> None:
    """The same user message after different assistant messages: its tool results move."""
    results = {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "a", "content": "A"},
            {"type": "tool_result", "tool_use_id": "b", "content": "B"},
        ],
    }
    calls = [
        {"type": "tool_use", "id": "a", "name": "Read", "input": {}},
        {"type": "tool_use", "id": "b", "name": "Read", "input": {}},
    ]
    head = [{"role": "user", "content": "hi"}]
    checker = Checker()
    for order in (calls, calls[::-1], calls[:1], []):
        assistant = {"role": "assistant", "content": order or [{"type": "text", "text": "none"}]}
        body = {"model": "m", "max_tokens": 10, "messages": [*head, assistant, results, *head]}
        checker.check(body, Dialect())
        checker.check(body, Dialect())


def test_system_prompts_are_kept_by_value() -> None:
    body = claude_code_request()
    system = body["system"]
    checker = Checker()
    variants = [
        system,
        [{**system[0], "text": "x-anthropic-billing-header: cc_version=2"}, *system[1:]],  # stripped
        [*system[:2], {**system[2], "text": system[2]["text"] + "."}],
        [*system[:2], {"type": "text", "text": system[2]["text"]}],  # no cache_control
        [],
        "a plain string",
        system[:1],  # only the billing line: no system message
    ]
    for dialect in (Dialect(), DIALECTS["openrouter_claude"]):
        for variant in [*variants, *variants]:
            checker.check({**body, "system": variant}, dialect)


def test_unshared_requests_do_not_use_the_memo() -> None:
    memo = EncodeMemo()
    request = decode_request_body(orjson.dumps(claude_code_request()))
    assert not request.shared_parts
    encode_request(request, "m", stream=False, dialect=Dialect(), memo=memo)
    assert len(memo) == 0
    assert memo.hits == memo.misses == 0


@pytest.mark.parametrize(("max_entries", "max_bytes"), [(40, 1 << 30), (1 << 20, 60_000), (60, 400_000)])
def test_memo_stays_within_its_bounds(max_entries: int, max_bytes: int) -> None:
    memo = EncodeMemo(max_entries=max_entries, max_bytes=max_bytes)
    checker = Checker(memo)
    for conversation in range(4):
        body = claude_code_request(turns=6 + conversation)
        for number in range(6):
            body = with_next_turn(body, number)
            for dialect in (Dialect(), DIALECTS["groq"]):
                checker.check(body, dialect)
                assert len(memo) <= max_entries
                assert memo.weight <= max_bytes
    assert memo.hits > 0
