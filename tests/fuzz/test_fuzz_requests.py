"""Fuzzing the real HTTP app: no client input gets a 5xx, every error is in the client's envelope,
and the gateway answers a valid request afterwards (``fuzz_support.check``). Bounded and seeded
for CI; ``CCROUTER_FUZZ_EXAMPLES=20000`` runs each test longer."""

from __future__ import annotations

import orjson
from fuzz_strategies import (
    ANTHROPIC_BODIES,
    CLAUDE_CODE_BODY,
    JSON_VALUES,
    OPENAI_BODIES,
    OPENAI_BODY,
    corrupted,
    mutated,
)
from fuzz_support import CHAT, COUNT, MESSAGES, Gateway, check
from hypothesis import given
from hypothesis import strategies as st


@given(body=corrupted(ANTHROPIC_BODIES), path=st.sampled_from([MESSAGES, COUNT]))
def test_anthropic_bodies_with_wrong_values(gateway: Gateway, body: bytes, path: str) -> None:
    check(gateway, path, body)


@given(body=corrupted(OPENAI_BODIES))
def test_openai_bodies_with_wrong_values(gateway: Gateway, body: bytes) -> None:
    check(gateway, CHAT, body)


@given(value=JSON_VALUES, path=st.sampled_from([MESSAGES, COUNT, CHAT]))
def test_any_json_document(gateway: Gateway, value: object, path: str) -> None:
    check(gateway, path, orjson.dumps(value))


@given(body=mutated(CLAUDE_CODE_BODY), path=st.sampled_from([MESSAGES, COUNT]))
def test_mutated_claude_code_bytes(gateway: Gateway, body: bytes, path: str) -> None:
    check(gateway, path, body)


@given(body=mutated(OPENAI_BODY))
def test_mutated_openai_bytes(gateway: Gateway, body: bytes) -> None:
    check(gateway, CHAT, body)
