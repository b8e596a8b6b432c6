"""The Redactor: whole secrets, identifying starts of keys and masked forms of keys, as providers
echo them; shared public prefixes, short starts and URLs' starts are left alone."""

from __future__ import annotations

import pytest

from ccrouter.telemetry.redact import REDACTED, Redactor

ANTHROPIC = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcdefghijklmnopqrstuvvvvAA"
OPENAI = "sk-proj-abcdEFGHijklMNOPqrstUVWXyz012345wxyz"
GEMINI = "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW"
ISSUE = "sk-ant-SECRETKEY0123456789vvvv"  # the shape of the key in the issue's report
CLIENT = "ck-team-0123456789abcdef"
STORE = "postgresql://postgres:hunter2hunter2@db.internal:5432/ccrouter"
REDACTOR = Redactor([ANTHROPIC, OPENAI, GEMINI, ISSUE, CLIENT, STORE, "ollama"])


@pytest.mark.parametrize(
    "echo",
    [
        ANTHROPIC,
        OPENAI,
        STORE,
        # starts: the vendor prefix plus three of the key's own characters, or more
        "sk-ant-api03-AbC",
        "sk-ant-api03-AbCdEfGhIjKlMnOp",
        "sk-ant-SECRE",
        "sk-proj-abc",
        "AIzaSyA1b",
        "ck-team-012",
        ANTHROPIC[:-5] + "ZZZZZ",  # a copy altered at its end: the token goes whole
        # masked forms, as Anthropic and OpenAI print them
        "sk-ant***vvvv",
        "sk-ant-***...vvvv",
        "sk-ant-api03-AbC...vvAA",
        "sk-proj-abcd****wxyz",
        "sk-proj-********************************************wxyz",
        "****wxyz",
        "sk-proj-abcd\u2026wxyz",
        "AIzaSy\u2022\u2022\u2022\u2022StUvW",
        "ck-team-xxxxxxxxabcdef",
    ],
)
def test_echoes_are_redacted(echo: str) -> None:
    text = f'{{"error": "invalid x-api-key {echo} (check your key)"}}'
    assert REDACTOR.text(text) == f'{{"error": "invalid x-api-key {REDACTED} (check your key)"}}'


@pytest.mark.parametrize(
    "text",
    [
        "sk-ant-api03-",  # every Anthropic key starts so
        "sk-ant-api03-Ab",  # two characters past it: not identifying
        "sk-proj-ab",
        "sk-ant-SE",  # not past the vendor prefix by three
        "AIzaSyA1",
        "ck-team-01",
        "postgresql://postgres@db.internal:5432",  # a URL's start names no secret
        "ollama is a provider",  # placeholder keys are no secrets
        "hello ... world *** vvvv",  # a mask run, but not before a key's end
        "total**wxyz",  # two stars are not a mask
        "file.wxyz",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert REDACTOR.text(text) == text


def test_a_mask_between_two_keys_parts_redacts_all_of_it() -> None:
    assert REDACTOR.text(f"a {OPENAI[:12]}***{OPENAI[-4:]} b {ISSUE[:8]}...{ISSUE[-6:]} c") == (
        f"a {REDACTED} b {REDACTED} c"
    )


def test_bytes_and_nested_values() -> None:
    assert REDACTOR.bytes(b"key sk-ant***vvvv") == b"key " + REDACTED.encode()
    assert REDACTOR.value({"a": ["sk-proj-abcd", 3]}) == {"a": [REDACTED, 3]}
    assert not Redactor(["short"])
