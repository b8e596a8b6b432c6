"""The subagent tag: found and removed in the canonical request only, copy-on-write; the encoder of
the client's wire sends the edit (``messages.Received``)."""

from __future__ import annotations

import copy
from typing import Any

import orjson

from ccrouter.codecs.anthropic.codec import decode_request, encode_request
from ccrouter.codecs.openai import chat as openai_chat
from ccrouter.codecs.openai.dialect import Dialect
from ccrouter.messages import MessagesRequest, TextBlock
from ccrouter.routing.prepare import CleanTexts, extract_subagent_model

BILLING = "x-anthropic-billing-header: cc_version=2.1.197.f3a; cc_entrypoint=sdk-cli; cch=00000;"
IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."
TAG = "<CCR-SUBAGENT-MODEL>deepseek,deepseek-chat</CCR-SUBAGENT-MODEL>"
EPHEMERAL = {"type": "ephemeral"}


def _body(
    system: list[str] | str, first_user: list[str] | str, *, later_user: str = "next"
) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "system": system
        if isinstance(system, str)
        else [{"type": "text", "text": text, "cache_control": EPHEMERAL} for text in system],
        "messages": [
            {
                "role": "user",
                "content": first_user
                if isinstance(first_user, str)
                else [{"type": "text", "text": text} for text in first_user],
            },
            {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
            {"role": "user", "content": later_user},
        ],
        "metadata": {"user_id": "u"},
    }


def _sent(request: MessagesRequest) -> dict[str, Any]:
    """What an Anthropic upstream receives: the passthrough of the client's body."""
    return encode_request(request, "m", stream=False)


def _texts(blocks: list[Any]) -> list[str]:
    return [block.text for block in blocks]


def test_subagent_tag_in_system_block_is_returned_and_stripped_everywhere() -> None:
    body = _body([BILLING, f"{TAG}You are a code reviewer."], ["review this"])
    request = decode_request(body)
    assert extract_subagent_model(request) == "deepseek,deepseek-chat"
    assert _texts(request.system) == [BILLING, "You are a code reviewer."]
    assert request.system[1].cache_control == EPHEMERAL
    sent = _sent(request)
    assert sent["system"][0] is body["system"][0]  # unchanged blocks are the client's own
    assert sent["system"][1] == {
        "type": "text",
        "text": "You are a code reviewer.",
        "cache_control": EPHEMERAL,
    }
    assert sent["messages"] is body["messages"]
    assert b"CCR-SUBAGENT-MODEL" not in orjson.dumps(sent)


def test_subagent_tag_in_first_user_message() -> None:
    # claude-code-router's agent feature writes the tag into the first user message.
    body = _body([IDENTITY], ["<system-reminder>ctx</system-reminder>", f"{TAG}\nFind the bug"])
    request = decode_request(body)
    assert extract_subagent_model(request) == "deepseek,deepseek-chat"
    assert _texts(request.messages[0].content) == ["<system-reminder>ctx</system-reminder>", "\nFind the bug"]
    sent = _sent(request)
    assert sent["messages"][0]["content"] == [
        {"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
        {"type": "text", "text": "\nFind the bug"},
    ]
    assert sent["messages"][1] is body["messages"][1]
    assert sent["system"] is body["system"]
    assert b"CCR-SUBAGENT-MODEL" not in orjson.dumps(sent)


def test_block_holding_only_the_tag_is_dropped() -> None:
    request = decode_request(_body([IDENTITY, TAG], ["hi"]))
    assert extract_subagent_model(request) == "deepseek,deepseek-chat"
    assert _texts(request.system) == [IDENTITY]
    assert [part["text"] for part in _sent(request)["system"]] == [IDENTITY]


def test_tag_in_a_later_user_message_is_not_a_route() -> None:
    body = _body([IDENTITY], ["hi"], later_user=f"quoting {TAG}")
    request = decode_request(body)
    before = _sent(request)
    assert extract_subagent_model(request) is None
    assert _sent(request) == before
    assert request.messages[2].content[0] == TextBlock(f"quoting {TAG}")


def test_first_tag_wins_and_all_are_removed() -> None:
    second = "<CCR-SUBAGENT-MODEL>groq,llama-3.3-70b-versatile</CCR-SUBAGENT-MODEL>"
    request = decode_request(_body([f"{TAG} a"], [f"{second} b"]))
    assert extract_subagent_model(request) == "deepseek,deepseek-chat"
    assert b"CCR-SUBAGENT-MODEL" not in orjson.dumps(_sent(request))
    assert _texts(request.system) == [" a"]
    assert _texts(request.messages[0].content) == [" b"]


def test_string_forms_stay_strings() -> None:
    request = decode_request(_body(f"{TAG}{IDENTITY}", f"{TAG}Do it"))
    assert extract_subagent_model(request) == "deepseek,deepseek-chat"
    assert _texts(request.messages[0].content) == ["Do it"]
    sent = _sent(request)
    assert sent["messages"][0] == {"role": "user", "content": "Do it"}
    assert sent["system"] == [{"type": "text", "text": IDENTITY}]


def test_openai_client_system_message() -> None:
    body = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": f"{TAG}Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "hello"}]},
        ],
    }
    request = openai_chat.decode_request(body)
    assert extract_subagent_model(request) == "deepseek,deepseek-chat"
    assert _texts(request.system) == ["Be brief."]
    sent, _ = openai_chat.encode_request(request, "m", stream=False, dialect=Dialect())
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello"},
    ]
    assert body["messages"][0] == {"role": "system", "content": f"{TAG}Be brief."}  # the client's, untouched


def test_edits_are_copy_on_write() -> None:
    body = _body([BILLING, f"{TAG}Review."], [f"{TAG}go"])
    original = copy.deepcopy(body)
    request = decode_request(body)
    system, messages = request.system, request.messages
    blocks = list(system)
    extract_subagent_model(request)
    _sent(request)
    assert body == original  # the client's body is not modified in place
    assert [block.text for block in system] == [BILLING, f"{TAG}Review."]
    assert request.system[0] is blocks[0]
    assert messages[0].content[0] == TextBlock(f"{TAG}go")
    assert request.messages[1] is messages[1]  # unchanged messages are shared, not copied


def test_no_tag_changes_nothing() -> None:
    request = decode_request(_body([IDENTITY], ["hi"]))
    system, messages = request.system, request.messages
    assert extract_subagent_model(request) is None
    assert request.system is system
    assert request.messages is messages


LONG = "Use the tools below. " * 100  # over CleanTexts.MIN_CHARS


def test_a_known_clean_text_still_yields_its_subagent_tag_when_it_has_one() -> None:
    clean = CleanTexts()
    tagged = f"{TAG}\n{LONG}"
    for _ in range(2):
        request = decode_request(_body([tagged], ["hi"]))
        assert extract_subagent_model(request, clean) == "deepseek,deepseek-chat"
    assert tagged not in clean
