"""Tool-call hygiene: name/id maps, schema cleaning, and the streamed-arguments guard."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import orjson
import pytest

from ccrouter.codecs.openai.toolnames import ArgumentStream, ToolNames, clean_schema, parse_arguments

NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
CALL_ID = re.compile(r"^[a-zA-Z0-9_-]{1,40}$")


# --------------------------------------------------------------------------- names and ids


@pytest.mark.parametrize(
    "name",
    [
        "Bash",
        "mcp__server__tool",
        "mcp__github_enterprise_server__create_or_update_repository_file_conten",  # 70 chars
        "x" * 200,
        "tool.with.dots",
        "outil-é",
        "",
    ],
)
def test_tool_names_are_valid_and_map_back(name: str) -> None:
    names = ToolNames()
    wire = names.to_wire_name(name)
    assert NAME.match(wire)
    assert names.from_wire_name(wire) == name
    assert names.to_wire_name(name) == wire  # stable within a call
    if NAME.match(name):
        assert wire == name


def test_tool_names_are_stable_across_calls_and_distinct() -> None:
    long_a, long_b = "a" * 70 + "_one", "a" * 70 + "_two"
    first, second = ToolNames(), ToolNames()
    assert first.to_wire_name(long_a) == second.to_wire_name(long_a)
    assert first.to_wire_name(long_a) != first.to_wire_name(long_b)
    # A sanitised name that collides with a real one gets a hash suffix instead.
    names = ToolNames()
    assert names.to_wire_name("a_b") == "a_b"
    collided = names.to_wire_name("a.b")
    assert collided != "a_b"
    assert NAME.match(collided)
    assert names.from_wire_name(collided) == "a.b"
    assert names.from_wire_name("a_b") == "a_b"


def _calls(names: ToolNames, items: list[tuple[bool, str]]) -> list[tuple[bool, str, str]]:
    return [
        (is_name, item, names.to_wire_name(item) if is_name else names.to_wire_id(item))
        for is_name, item in items
    ]


def _maps(names: ToolNames) -> tuple[dict[str, str], ...]:
    return names._names_out, names._names_in, names._ids_out, names._ids_in


@pytest.mark.parametrize("seed", range(20))
def test_replay_has_the_effect_of_the_calls(seed: int) -> None:
    """Replaying recorded calls after other calls: True and the same maps when every answer is the
    recorded one; False (and still the maps the calls give, once they are made) when one differs."""
    rng = random.Random(seed)
    pool = ["a_b", "a.b", "Read", "x" * 70, "x" * 70 + ".", "call:1", "call_1", "toolu_" + "7" * 50, ""]
    items = [(rng.random() < 0.5, rng.choice(pool)) for _ in range(8)]
    before = [(rng.random() < 0.5, rng.choice(pool)) for _ in range(3)]
    calls = _calls(ToolNames(), items)
    direct, replayed = ToolNames(), ToolNames()
    _calls(direct, before)
    _calls(replayed, before)
    expected = _calls(direct, items)
    same = replayed.replay(calls)
    assert same == (expected == calls)
    if not same:
        _calls(replayed, items)
    assert _maps(replayed) == _maps(direct)


def test_unknown_wire_names_pass_through() -> None:
    assert ToolNames().from_wire_name("Read") == "Read"


@pytest.mark.parametrize("call_id", ["toolu_01ABC", "call:0/x.y", "a" * 41, "id with spaces", "é"])
def test_call_ids_are_valid_and_map_back(call_id: str) -> None:
    names = ToolNames()
    wire = names.to_wire_id(call_id)
    assert CALL_ID.match(wire)
    assert names.from_wire_id(wire) == call_id
    if CALL_ID.match(call_id):
        assert wire == call_id


def test_provider_ids_made_valid_and_missing_ids_generated() -> None:
    names = ToolNames(id_prefix="t")
    assert names.from_wire_id("call_abc") == "call_abc"
    bad = names.from_wire_id("call:1")
    assert re.fullmatch(r"[a-zA-Z0-9_-]+", bad)
    assert bad == names.from_wire_id("call:1")
    assert [names.from_wire_id(None), names.from_wire_id("")] == ["call_t1", "call_t2"]
    assert ToolNames().from_wire_id(None) != ToolNames().from_wire_id(None)  # random per call


# --------------------------------------------------------------------------- schemas and arguments


def test_clean_schema_copies_only_what_changes() -> None:
    untouched = {"type": "string", "enum": ["a"]}
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "keep": untouched,
            "$schema": {"type": "string"},
            "nested": {"$id": "x", "type": "object"},
        },
        "required": ["keep"],
        "$defs": {"thing": {"type": "object", "required": ["a"]}},
    }
    cleaned = clean_schema(schema, frozenset({"$schema", "$id"}))
    assert cleaned == {
        "type": "object",
        "properties": {"keep": untouched, "$schema": {"type": "string"}, "nested": {"type": "object"}},
        "required": ["keep"],
        "$defs": {"thing": {"type": "object"}},
    }
    assert cleaned["properties"]["keep"] is untouched
    assert "$schema" in schema  # the input is not modified
    plain = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert clean_schema(plain, frozenset({"$schema"})) is plain


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ({"a": 1}, {"a": 1}),
        ('{"a": "b', {"a": "b"}),
        ("{'a': True,}", {"a": True}),
        ('"{\\"a\\": 2}"', {"a": 2}),
        ("[1, 2]", {}),
        ("", {}),
        (None, {}),
        ("garbage", {}),
    ],
)
def test_parse_arguments(arguments: Any, expected: dict[str, Any]) -> None:
    assert parse_arguments(arguments) == expected


# --------------------------------------------------------------------------- streamed arguments


def stream(fragments: list[str]) -> tuple[list[str], str]:
    guard = ArgumentStream()
    forwarded = [guard.feed(fragment) for fragment in fragments]
    return forwarded, "".join(forwarded) + guard.close()


@pytest.mark.parametrize(
    ("fragments", "expected"),
    [
        (['{"a"', ': "b"}'], {"a": "b"}),
        ([' {"a": [1, 2.5e3, true, null, {"b": "c"}]} '], {"a": [1, 2500.0, True, None, {"b": "c"}]}),
        # Truncated anywhere (max_tokens): completed.
        (['{"a": "li'], {"a": "li"}),
        (['{"a": "x\\'], {"a": "x"}),
        (['{"a": "\\u00'], {"a": "\u0000"}),
        (['{"a": "\\ud83d'], {"a": "\U0001f400"}),  # a high surrogate is given a low pair
        (['{"a": "\\ud83d\\ude'], {"a": "\U0001f600"}),
        (['{"a": "\\ud83d\\u0'], {"a": "\ud83d\u0000"}),  # already unpaired: lenient parsers only
        (['{"a": tr'], {"a": True}),
        (['{"a": -'], {"a": 0}),
        (['{"a": 1.'], {"a": 1.0}),
        (['{"a"'], {"a": None}),
        (['{"a":'], {"a": None}),
        (['{"a": [1, {"b": '], {"a": [1, {"b": None}]}),
        (['{"a": 1,'], {"a": 1}),
        (["{"], {}),
        ([], {}),
        # Repaired on the fly.
        (['{"a": "line1\nline2\t"}'], {"a": "line1\nline2\t"}),
        (['{"p": "C:\\dir"}'], {"p": "C:\\dir"}),
        (['{"a": [1, 2,], "b": 3,}'], {"a": [1, 2], "b": 3}),
        (['{"a": 1}', '{"b": 2}'], {"a": 1}),
        # Not JSON from the first token: left to json_repair whole.
        (["{'a': True, 'b': None}"], {"a": True, "b": None}),
        (['"{\\"a\\": 1}"'], {"a": 1}),
        (["not json at all"], {}),
        # Broken after a good start: forwarding stops, the prefix is closed.
        (['{"a": 1, "b": tru', "x, "], {"a": 1, "b": True}),
        (['{"a": 1} trailing'], {"a": 1}),
    ],
)
def test_argument_stream_always_ends_valid(fragments: list[str], expected: dict[str, Any]) -> None:
    _, total = stream(fragments)
    assert json.loads(total) == expected


def test_argument_stream_forwards_valid_json_unchanged_as_it_arrives() -> None:
    text = '{"command":"ls -la","timeout":120000,"description":"List files é 🎉"}'
    fragments = [text[i : i + 5] for i in range(0, len(text), 5)]
    forwarded, total = stream(fragments)
    assert total == text
    assert all(forwarded[1:-1])  # every fragment past the held "{" produced output right away


def test_argument_stream_fuzz() -> None:
    """Random objects, cut at random, truncated or corrupted: the result always parses as an object,
    and intact input round-trips exactly."""
    rng = random.Random(7)

    def value(depth: int) -> Any:
        roll = rng.random()
        if depth > 3 or roll < 0.4:
            return rng.choice([0, -12, 3.5, 1e-7, True, False, None, "", 'q"uote\\back\nline é 🎉', "plain"])
        if roll < 0.7:
            return {f"k{i}": value(depth + 1) for i in range(rng.randint(0, 3))}
        return [value(depth + 1) for _ in range(rng.randint(0, 3))]

    for _ in range(400):
        obj = {"x": value(0)}
        text = json.dumps(obj, ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, 1]))
        cuts = sorted(rng.sample(range(1, len(text)), k=min(5, len(text) - 1)))
        fragments = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        assert orjson.loads(stream(fragments)[1]) == obj
        truncated = text[: rng.randint(0, len(text))]
        assert isinstance(orjson.loads(stream([truncated])[1]), dict)
        chars = list(text)
        for _ in range(2):
            chars.insert(rng.randint(0, len(chars)), rng.choice(list(",]}{[\":\\'x \n0")))
        assert isinstance(json.loads(stream(["".join(chars)])[1]), dict)
