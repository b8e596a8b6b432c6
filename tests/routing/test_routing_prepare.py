from __future__ import annotations

import copy
from typing import Any

import orjson

from ccrouter.messages import Message, MessagesRequest, TextBlock, ToolResultBlock
from ccrouter.routing.prepare import CleanTexts, extract_subagent_model, strip_billing_header

BILLING = "x-anthropic-billing-header: cc_version=2.1.197.f3a; cc_entrypoint=sdk-cli; cch=00000;"
IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."
TAG = "<CCR-SUBAGENT-MODEL>deepseek,deepseek-chat</CCR-SUBAGENT-MODEL>"
EPHEMERAL = {"type": "ephemeral"}


def _anthropic_request(
    system: list[str], first_user: list[str], *, later_user: str = "next"
) -> MessagesRequest:
    """A canonical request and its Anthropic raw body, built side by side as the codec would."""
    raw: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "system": [{"type": "text", "text": text, "cache_control": EPHEMERAL} for text in system],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": text} for text in first_user]},
            {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
            {"role": "user", "content": later_user},
        ],
        "metadata": {"user_id": "u"},
    }
    return MessagesRequest(
        model="claude-sonnet-4-5",
        max_tokens=32000,
        system=[TextBlock(text, dict(EPHEMERAL)) for text in system],
        messages=[
            Message("user", [TextBlock(text) for text in first_user]),
            Message("assistant", [TextBlock("ok")]),
            Message("user", [TextBlock(later_user)]),
        ],
        raw=raw,
        raw_format="anthropic",
    )


def _texts(blocks: list[Any]) -> list[str]:
    return [block.text for block in blocks]


# ---------------------------------------------------------------------- subagent tag


def test_subagent_tag_in_system_block_is_returned_and_stripped_everywhere() -> None:
    request = _anthropic_request([BILLING, f"{TAG}You are a code reviewer."], ["review this"])
    assert extract_subagent_model(request) == "deepseek,deepseek-chat"
    assert _texts(request.system) == [BILLING, "You are a code reviewer."]
    assert request.system[1].cache_control == EPHEMERAL
    assert request.raw is not None
    assert request.raw["system"][1] == {
        "type": "text",
        "text": "You are a code reviewer.",
        "cache_control": EPHEMERAL,
    }
    assert b"CCR-SUBAGENT-MODEL" not in orjson.dumps(request.raw)


def test_subagent_tag_in_first_user_message() -> None:
    # claude-code-router's agent feature writes the tag into the first user message.
    request = _anthropic_request(
        [IDENTITY], ["<system-reminder>ctx</system-reminder>", f"{TAG}\nFind the bug"]
    )
    assert extract_subagent_model(request) == "deepseek,deepseek-chat"
    assert _texts(request.messages[0].content) == ["<system-reminder>ctx</system-reminder>", "\nFind the bug"]
    assert request.raw is not None
    assert [part["text"] for part in request.raw["messages"][0]["content"]] == [
        "<system-reminder>ctx</system-reminder>",
        "\nFind the bug",
    ]
    assert b"CCR-SUBAGENT-MODEL" not in orjson.dumps(request.raw)


def test_block_holding_only_the_tag_is_dropped() -> None:
    request = _anthropic_request([IDENTITY, TAG], ["hi"])
    assert extract_subagent_model(request) == "deepseek,deepseek-chat"
    assert _texts(request.system) == [IDENTITY]
    assert request.raw is not None
    assert [part["text"] for part in request.raw["system"]] == [IDENTITY]


def test_tag_in_a_later_user_message_is_not_a_route() -> None:
    request = _anthropic_request([IDENTITY], ["hi"], later_user=f"quoting {TAG}")
    raw_before = copy.deepcopy(request.raw)
    assert extract_subagent_model(request) is None
    assert request.raw == raw_before
    assert request.messages[2].content[0] == TextBlock(f"quoting {TAG}")


def test_first_tag_wins_and_all_are_removed() -> None:
    second = "<CCR-SUBAGENT-MODEL>groq,llama-3.3-70b-versatile</CCR-SUBAGENT-MODEL>"
    request = _anthropic_request([f"{TAG} a"], [f"{second} b"])
    assert extract_subagent_model(request) == "deepseek,deepseek-chat"
    assert b"CCR-SUBAGENT-MODEL" not in orjson.dumps(request.raw)
    assert _texts(request.system) == [" a"]
    assert _texts(request.messages[0].content) == [" b"]


def test_string_forms_in_raw_are_edited_too() -> None:
    request = _anthropic_request([IDENTITY], ["x"])
    assert request.raw is not None
    request.raw["system"] = IDENTITY
    request.raw["messages"][0]["content"] = f"{TAG}Do it"
    request.messages[0] = Message("user", [TextBlock(f"{TAG}Do it")])
    assert extract_subagent_model(request) == "deepseek,deepseek-chat"
    assert request.raw["messages"][0]["content"] == "Do it"
    assert _texts(request.messages[0].content) == ["Do it"]


def test_raw_out_of_sync_is_dropped() -> None:
    request = _anthropic_request([f"{TAG}You review."], ["hi"])
    assert request.raw is not None
    request.raw["system"] = "You review."  # the tag is not where canonical has it
    assert extract_subagent_model(request) == "deepseek,deepseek-chat"
    assert request.raw is None


def test_openai_raw_system_message() -> None:
    raw = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": f"{TAG}Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "hello"}]},
        ],
    }
    request = MessagesRequest(
        model="gpt-4o",
        max_tokens=100,
        system=[TextBlock(f"{TAG}Be brief.")],
        messages=[Message("user", [TextBlock("hello")])],
        raw=raw,
        raw_format="openai",
    )
    assert extract_subagent_model(request) == "deepseek,deepseek-chat"
    assert request.raw is not None
    assert request.raw["messages"][0] == {"role": "system", "content": "Be brief."}
    assert request.raw["messages"][1] is raw["messages"][1]  # untouched messages are shared


def test_edits_are_copy_on_write() -> None:
    request = _anthropic_request([BILLING, f"{TAG}Review."], [f"{TAG}go"])
    original_raw = copy.deepcopy(request.raw)
    raw, system, messages = request.raw, request.system, request.messages
    blocks = list(system)
    extract_subagent_model(request)
    strip_billing_header(request)
    assert raw == original_raw  # the client's body is not modified in place
    assert [block.text for block in system] == [BILLING, f"{TAG}Review."]
    assert system[1] is blocks[1]
    assert messages[0].content[0] == TextBlock(f"{TAG}go")
    assert request.messages[1] is messages[1]  # unchanged messages are shared, not copied


def test_no_tag_changes_nothing() -> None:
    request = _anthropic_request([IDENTITY], ["hi"])
    raw, system, messages = request.raw, request.system, request.messages
    assert extract_subagent_model(request) is None
    assert request.raw is raw
    assert request.system is system
    assert request.messages is messages


# ---------------------------------------------------------------------- billing header


def test_billing_header_block_removed_from_canonical_and_raw() -> None:
    request = _anthropic_request([BILLING, IDENTITY, "Instructions"], ["hi"])
    strip_billing_header(request)
    assert _texts(request.system) == [IDENTITY, "Instructions"]
    assert request.raw is not None
    assert [part["text"] for part in request.raw["system"]] == [IDENTITY, "Instructions"]
    assert b"x-anthropic-billing-header" not in orjson.dumps(request.raw)


def test_billing_line_inside_a_larger_block_keeps_the_rest() -> None:
    request = _anthropic_request([f"{BILLING}\n{IDENTITY}"], ["hi"])
    strip_billing_header(request)
    assert _texts(request.system) == [IDENTITY]
    assert request.raw is not None
    assert request.raw["system"][0]["text"] == IDENTITY


def test_billing_header_as_raw_string_system() -> None:
    request = _anthropic_request([BILLING], ["hi"])
    assert request.raw is not None
    request.raw["system"] = BILLING
    strip_billing_header(request)
    assert request.system == []
    assert request.raw is not None
    assert "system" not in request.raw


def test_billing_header_only_in_system_not_in_user_text() -> None:
    request = _anthropic_request([IDENTITY], [f"I saw {BILLING}"])
    raw = request.raw
    strip_billing_header(request)
    assert request.raw is raw
    assert _texts(request.messages[0].content) == [f"I saw {BILLING}"]


def test_billing_header_untouched_blocks_keep_identity() -> None:
    result = ToolResultBlock("toolu_1", [TextBlock("done")])
    request = _anthropic_request([BILLING, IDENTITY], ["hi"])
    request.messages.append(Message("user", [result]))
    identity_block = request.system[1]
    strip_billing_header(request)
    assert request.system[0] is identity_block
    assert request.messages[-1].content[0] is result


# ---------------------------------------------------------------------- texts known clean


LONG = "Use the tools below. " * 100  # over CleanTexts.MIN_CHARS


def test_a_long_text_found_clean_is_not_scanned_again_but_a_tagged_one_always_is() -> None:
    clean = CleanTexts()
    first = _anthropic_request([BILLING, LONG], ["hi"])
    strip_billing_header(first, clean)
    assert first.system[0].text in clean
    # The same text objects in the next turn (the decode cache shares them): same result.
    again = _anthropic_request([BILLING, LONG], ["hi"])
    again.system[1] = first.system[0]
    strip_billing_header(again, clean)
    assert _texts(again.system) == [LONG]
    # A text with the line is never taken for clean, nor is an equal text that is another object.
    tagged = f"{BILLING}\n{LONG}"
    later = _anthropic_request([tagged], ["hi"])
    strip_billing_header(later, clean)
    assert _texts(later.system) == [LONG]
    assert tagged not in clean
    equal = "".join(["Use the tools below. "] * 100)
    assert equal == LONG
    assert equal is not LONG
    assert equal not in clean


def test_a_known_clean_text_still_yields_its_subagent_tag_when_it_has_one() -> None:
    clean = CleanTexts()
    tagged = f"{TAG}\n{LONG}"
    for _ in range(2):
        request = _anthropic_request([tagged], ["hi"])
        assert extract_subagent_model(request, clean) == "deepseek,deepseek-chat"
    assert tagged not in clean


def test_clean_texts_are_bounded() -> None:
    clean = CleanTexts(max_chars=5000)
    texts = [f"{i} " + "x" * 2000 for i in range(10)]
    for text in texts:
        clean.add(text)
    assert sum(text in clean for text in texts) <= 2
    short = "short"
    clean.add(short)
    assert short not in clean
