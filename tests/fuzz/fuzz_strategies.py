"""Hypothesis strategies for the fuzz tests: request bodies shaped like the real ones with wrong
types and values injected anywhere, and byte-level mutations of a real Claude-Code-shaped body."""

from __future__ import annotations

import copy
from typing import Any

import orjson
from fuzz_support import ROUTES
from hypothesis import strategies as st

from ccrouter.testing.claude_code import claude_code_request

# Any JSON value, with the edges that broke decoders before: huge and negative numbers, non-finite
# looking floats, long and odd text (surrogates are not JSON-encodable, so strings stay valid UTF-8
# here; raw bytes cover the rest), empty and nested containers.
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.integers(min_value=-(2**31), max_value=2**31),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["", "user", "assistant", "system", "tool", "text", "tool_use", "image", "auto"]),
)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)

_TEXT = st.text(max_size=60)
_ID = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=12)
_MODEL = st.one_of(st.sampled_from(ROUTES), _TEXT)


def _block() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.fixed_dictionaries({"type": st.just("text"), "text": _TEXT}),
        st.fixed_dictionaries(
            {"type": st.just("tool_use"), "id": _ID, "name": _ID, "input": st.dictionaries(_ID, JSON_VALUES)}
        ),
        st.fixed_dictionaries(
            {
                "type": st.just("tool_result"),
                "tool_use_id": _ID,
                "content": st.one_of(
                    _TEXT, st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": _TEXT}))
                ),
            },
            optional={"is_error": st.booleans()},
        ),
        st.fixed_dictionaries(
            {
                "type": st.just("image"),
                "source": st.fixed_dictionaries(
                    {
                        "type": st.just("base64"),
                        "media_type": st.just("image/png"),
                        "data": st.just("iVBORw0KGgo="),
                    }
                ),
            }
        ),
        st.fixed_dictionaries({"type": st.just("thinking"), "thinking": _TEXT, "signature": _TEXT}),
    )


_ANTHROPIC_MESSAGE = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "assistant", "system"]),
        "content": st.one_of(_TEXT, st.lists(_block(), max_size=3)),
    }
)
_ANTHROPIC_TOOL = st.fixed_dictionaries(
    {"name": _ID, "input_schema": st.just({"type": "object", "properties": {"x": {"type": "string"}}})},
    optional={"description": _TEXT, "cache_control": st.just({"type": "ephemeral"})},
)
ANTHROPIC_BODIES = st.fixed_dictionaries(
    {
        "model": _MODEL,
        "max_tokens": st.integers(min_value=1, max_value=64_000),
        "messages": st.lists(_ANTHROPIC_MESSAGE, min_size=1, max_size=4),
    },
    optional={
        "system": st.one_of(
            _TEXT, st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": _TEXT}), max_size=2)
        ),
        "tools": st.lists(_ANTHROPIC_TOOL, max_size=3),
        "tool_choice": st.sampled_from(
            [{"type": "auto"}, {"type": "any"}, {"type": "none"}, {"type": "tool", "name": "x"}]
        ),
        "stop_sequences": st.lists(_TEXT, max_size=2),
        "temperature": st.floats(min_value=0, max_value=1),
        "top_p": st.floats(min_value=0, max_value=1),
        "top_k": st.integers(min_value=1, max_value=100),
        "stream": st.booleans(),
        "thinking": st.sampled_from(
            [{"type": "enabled", "budget_tokens": 1024}, {"type": "adaptive"}, {"type": "disabled"}]
        ),
        "metadata": st.fixed_dictionaries({"user_id": _TEXT}),
    },
)

_OPENAI_MESSAGE = st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "developer", "user"]), "content": _TEXT}),
    st.fixed_dictionaries(
        {
            "role": st.just("user"),
            "content": st.lists(
                st.one_of(
                    st.fixed_dictionaries({"type": st.just("text"), "text": _TEXT}),
                    st.fixed_dictionaries(
                        {
                            "type": st.just("image_url"),
                            "image_url": st.fixed_dictionaries(
                                {"url": st.just("data:image/png;base64,iVBORw0KGgo=")}
                            ),
                        }
                    ),
                ),
                max_size=3,
            ),
        }
    ),
    st.fixed_dictionaries(
        {
            "role": st.just("assistant"),
            "content": st.one_of(st.none(), _TEXT),
            "tool_calls": st.lists(
                st.fixed_dictionaries(
                    {
                        "id": _ID,
                        "type": st.just("function"),
                        "function": st.fixed_dictionaries(
                            {"name": _ID, "arguments": st.one_of(_TEXT, st.just('{"x": 1}'))}
                        ),
                    }
                ),
                max_size=2,
            ),
        }
    ),
    st.fixed_dictionaries({"role": st.just("tool"), "tool_call_id": _ID, "content": _TEXT}),
)
OPENAI_BODIES = st.fixed_dictionaries(
    {"model": _MODEL, "messages": st.lists(_OPENAI_MESSAGE, min_size=1, max_size=4)},
    optional={
        "max_tokens": st.integers(min_value=1, max_value=64_000),
        "max_completion_tokens": st.integers(min_value=1, max_value=64_000),
        "tools": st.lists(
            st.fixed_dictionaries(
                {
                    "type": st.just("function"),
                    "function": st.fixed_dictionaries(
                        {"name": _ID, "parameters": st.just({"type": "object", "properties": {}})},
                        optional={"description": _TEXT},
                    ),
                }
            ),
            max_size=3,
        ),
        "tool_choice": st.sampled_from(
            ["auto", "none", "required", {"type": "function", "function": {"name": "x"}}]
        ),
        "stop": st.one_of(_TEXT, st.lists(_TEXT, max_size=2)),
        "temperature": st.floats(min_value=0, max_value=2),
        "top_p": st.floats(min_value=0, max_value=1),
        "stream": st.booleans(),
        "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
        "reasoning_effort": st.sampled_from(["low", "medium", "high", "none"]),
        "parallel_tool_calls": st.booleans(),
        "user": _TEXT,
    },
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value (the root excluded): dict keys and list indexes."""
    found: list[tuple[Any, ...]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found.append((*prefix, key))
        found.extend(_paths(child, (*prefix, key)))
    return found


@st.composite
def corrupted(draw: st.DrawFn, bodies: st.SearchStrategy[dict[str, Any]]) -> bytes:
    """A body from ``bodies`` with a few of its values replaced by any JSON value, or removed, or an
    unknown member added; serialised."""
    body = copy.deepcopy(draw(bodies))  # ``just`` and ``sampled_from`` values are shared objects
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        paths = _paths(body)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = body
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(JSON_VALUES)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = draw(JSON_VALUES)
        else:
            parent.append(draw(JSON_VALUES))
    return orjson.dumps(body)


# A real Claude-Code-shaped body (about 100 KB) and an OpenAI one, for byte-level mutations.
CLAUDE_CODE_BODY = orjson.dumps(claude_code_request(model=ROUTES[1], stream=False, turns=4))
OPENAI_BODY = orjson.dumps(
    {
        "model": ROUTES[1],
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Read the file"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "Read", "arguments": '{"path": "a.py"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "print('hi')"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "Read",
                    "description": "Read a file",
                    "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
                },
            }
        ],
        "max_tokens": 100,
    }
)
# Bytes that broke parsers before: a lone Latin-1 byte, a NUL, JSON structure, numbers out of range.
_SPECIAL = st.sampled_from(
    [
        b"\xe9",
        b"\xff",
        b"\x00",
        b"\xed\xa0\x80",
        b'"',
        b"\\",
        b"{",
        b"}",
        b"[",
        b"]",
        b",",
        b":",
        b"1e400",
        b"-1e99999",
        b"18446744073709551616",
        b"null",
        b"true",
        b"[" * 300,
        b'{"a":' * 300,
        b"\\ud800",
    ]
)


@st.composite
def mutated(draw: st.DrawFn, body: bytes) -> bytes:
    """``body`` with a few byte-level edits: inserted special or random bytes, flipped, deleted or
    duplicated slices, a truncated end."""
    data = bytearray(body)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(data)))
        action = draw(
            st.sampled_from(["insert", "insert", "random", "flip", "delete", "duplicate", "truncate"])
        )
        if action == "insert":
            data[at:at] = draw(_SPECIAL)
        elif action == "random":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif action == "flip" and at < len(data):
            data[at] ^= draw(st.integers(min_value=1, max_value=255))
        elif action == "delete":
            del data[at : at + draw(st.integers(min_value=1, max_value=64))]
        elif action == "duplicate":
            data[at:at] = data[at : at + draw(st.integers(min_value=1, max_value=256))]
        elif action == "truncate":
            del data[at:]
    return bytes(data)
