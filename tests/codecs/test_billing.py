"""Claude Code's billing line: one rule (``codecs.billing``), the same for every wire that drops it."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from ccrouter.codecs.anthropic.codec import decode_request
from ccrouter.codecs.anthropic.codec import encode_request as anthropic_encode
from ccrouter.codecs.billing import is_subagent, strip_billing_line, without_billing_line
from ccrouter.codecs.gemini.codec import encode_request as gemini_encode
from ccrouter.codecs.openai.chat import encode_request as openai_encode
from ccrouter.codecs.openai.dialect import Dialect
from ccrouter.codecs.prompt import CleanTexts
from ccrouter.messages import Message, MessagesRequest, TextBlock, ToolResultBlock

BILLING = "x-anthropic-billing-header: cc_version=2.1.197.f3a; cc_entrypoint=sdk-cli; cch=00000;"
IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BILLING, ""),
        (f"{BILLING}\n{IDENTITY}", IDENTITY),
        (f"{IDENTITY}\n  {BILLING}\nmore", f"{IDENTITY}\nmore"),  # indented, in the middle
        (IDENTITY, None),
        (f"I saw {BILLING}", None),  # not at the start of a line
    ],
)
def test_the_rule_removes_every_line_that_starts_with_the_prefix(text: str, expected: str | None) -> None:
    assert strip_billing_line(text) == expected


def _body(system: list[str] | str, *, first_user: str = "hi") -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1000,
        "system": system
        if isinstance(system, str)
        else [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}} for text in system],
        "messages": [{"role": "user", "content": first_user}],
    }


def test_a_request_without_the_line_is_returned_as_is() -> None:
    request = decode_request(_body([IDENTITY]))
    assert without_billing_line(request) is request


def test_the_line_is_removed_copy_on_write() -> None:
    body = _body([BILLING, IDENTITY])
    original = copy.deepcopy(body)
    request = decode_request(body)
    system = request.system
    stripped = without_billing_line(request)
    assert [block.text for block in stripped.system] == [IDENTITY]
    assert stripped.system[0] is system[1]  # untouched blocks are shared
    assert request.system is system
    assert [block.text for block in system] == [BILLING, IDENTITY]
    assert body == original


def test_scope_is_the_system_prompt_and_system_messages_before_the_first_user_message() -> None:
    result = ToolResultBlock("toolu_1", [TextBlock("done")])
    request = MessagesRequest(
        model="m",
        max_tokens=10,
        messages=[
            Message("system", [TextBlock(f"{BILLING}\nnote")]),
            Message("user", [TextBlock(BILLING)]),
            Message("user", [result]),
        ],
    )
    stripped = without_billing_line(request)
    assert stripped.messages[0].content == [TextBlock("note")]
    assert stripped.messages[1] is request.messages[1]  # user text is the user's
    assert stripped.messages[2].content[0] is result


LONG = "Use the tools below. " * 100  # over CleanTexts.MIN_CHARS


def test_a_long_text_found_clean_is_not_scanned_again() -> None:
    clean = CleanTexts()
    first = decode_request(_body([BILLING, LONG]))
    assert [block.text for block in without_billing_line(first, clean).system] == [LONG]
    assert first.system[1].text in clean
    tagged = f"{BILLING}\n{LONG}"
    later = without_billing_line(decode_request(_body([tagged])), clean)
    assert [block.text for block in later.system] == [LONG]
    assert tagged not in clean
    equal = "".join(["Use the tools below. "] * 100)
    assert equal == LONG
    assert equal is not LONG
    assert equal not in clean  # by identity: another object is scanned


def test_clean_texts_are_bounded() -> None:
    clean = CleanTexts(max_chars=5000)
    texts = [f"{i} " + "x" * 2000 for i in range(10)]
    for text in texts:
        clean.add(text)
    assert sum(text in clean for text in texts) <= 2
    short = "short"
    clean.add(short)
    assert short not in clean


@pytest.mark.parametrize(
    "system", [[BILLING, IDENTITY], [f"  {BILLING}\n{IDENTITY}"], f"{BILLING}\n{IDENTITY}"]
)
def test_openai_and_gemini_encoders_drop_it_and_the_anthropic_codec_keeps_it(system: Any) -> None:
    request = decode_request(_body(system))
    openai_body, _ = openai_encode(request, "m", stream=False, dialect=Dialect())
    gemini_body, _ = gemini_encode(request, "m")
    for body in (openai_body, gemini_body):
        text = orjson.dumps(body)
        assert b"x-anthropic-billing-header" not in text
        assert IDENTITY.encode() in text
    # Whether an Anthropic endpoint gets it is the Anthropic adapter's rule (its API reads it).
    assert b"x-anthropic-billing-header" in orjson.dumps(anthropic_encode(request, "m", stream=False))


@pytest.mark.parametrize(
    ("system", "flagged"),
    [
        # As Claude Code 2.1.332 sends them: a subagent's line, then its main thread's.
        (
            [
                "x-anthropic-billing-header: cc_version=2.1.332.322; cc_entrypoint=sdk-cli;"
                " cc_is_subagent=true;"
            ],
            True,
        ),
        (
            ["x-anthropic-billing-header: cc_version=2.1.332.a15; cc_entrypoint=sdk-cli;", "You are Claude."],
            False,
        ),
        (["You are Claude.", "  x-anthropic-billing-header: cc_version=1; cc_is_subagent=true;\nmore"], True),
        # Only the billing line counts: the flag elsewhere, or false, is not a subagent.
        (["Please add cc_is_subagent=true; to x-anthropic-billing-header: lines"], False),
        (["x-anthropic-billing-header: cc_version=1; cc_is_subagent=false;"], False),
        ([], False),
    ],
)
def test_the_billing_line_says_whether_a_subagent_sent_the_request(system: list[str], flagged: bool) -> None:
    body: dict[str, Any] = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    if system:
        body["system"] = [{"type": "text", "text": text} for text in system]
    assert is_subagent(decode_request(body)) is flagged
