"""The Anthropic passthrough follows the canonical request: a field, message, block or tool edited
after decoding (copy-on-write, as routing, a transformer or the provider's rules do) is encoded
again; everything else is the client's own value, and its own bytes when serialised."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from ccrouter.codecs.anthropic.body import decode_request_body
from ccrouter.codecs.anthropic.codec import decode_request, encode_request, encode_request_json
from ccrouter.codecs.body import DecodeCache
from ccrouter.messages import Message, TextBlock, ThinkingConfig, ToolChoice

SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}}


def _body() -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 1000,
        "system": [
            {"type": "text", "text": "You are helpful.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Be brief."},
        ],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi", "citations": None}]},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "search"},
        ],
        "tools": [
            {"name": "a", "input_schema": SCHEMA, "strict": True},
            {"name": "b", "input_schema": SCHEMA},
        ],
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "temperature": 1,
        "context_management": {"edits": []},
    }


def test_nothing_changed_is_the_clients_body() -> None:
    body = _body()
    request = decode_request(body)
    sent = encode_request(request, "m", stream=True)
    assert sent == {**body, "model": "m", "stream": True}
    assert all(sent[key] is body[key] for key in ("system", "messages", "tools", "thinking"))


def test_edited_scalars_and_configs_are_encoded_again() -> None:
    request = decode_request(_body())
    request.temperature = None
    request.top_p = 0.5
    request.thinking = ThinkingConfig(type="adaptive")
    request.tool_choice = ToolChoice(type="tool", name="a")
    request.stop_sequences = ["END"]
    request.effort = "low"
    request.extra = {"output_config": {"effort": "low"}}  # context_management removed
    sent = encode_request(request, "m", stream=False)
    assert "temperature" not in sent
    assert "context_management" not in sent
    assert sent["top_p"] == 0.5
    assert sent["thinking"] == {"type": "adaptive"}
    assert sent["tool_choice"] == {"type": "tool", "name": "a"}
    assert sent["stop_sequences"] == ["END"]
    assert sent["output_config"] == {"effort": "low"}


def test_lists_are_merged_item_by_item() -> None:
    body = _body()
    request = decode_request(body)
    first = request.messages[0]
    edited_block = dataclasses.replace(first.content[0], text="hi there")
    request.messages = [Message("user", [edited_block]), *request.messages[1:2]]  # last one dropped
    request.system = [dataclasses.replace(request.system[0], cache_control=None), request.system[1]]
    request.tools = request.tools[1:]
    sent = encode_request(request, "m", stream=False)
    # The edited block keeps what else the client's block had.
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hi there", "citations": None}]},
        body["messages"][1],
    ]
    assert sent["messages"][1] is body["messages"][1]
    assert sent["system"] == [{"type": "text", "text": "You are helpful."}, body["system"][1]]
    assert sent["system"][1] is body["system"][1]
    assert sent["tools"] == [body["tools"][1]]


def test_an_edited_string_content_stays_a_string() -> None:
    request = decode_request(_body())
    last = request.messages[2]
    request.messages = [*request.messages[:2], Message("user", [TextBlock("search the web")])]
    assert last.content == [TextBlock("search")]
    assert encode_request(request, "m", stream=False)["messages"][2] == {
        "role": "user",
        "content": "search the web",
    }


def test_unchanged_fields_are_sent_as_the_clients_bytes() -> None:
    raw = (
        b'{"model":"x","max_tokens":10,"temperature":1.50,"messages":[{"role":"user","content":"hi"}],'
        b'"system":"be  brief"}'
    )
    request = decode_request_body(raw, DecodeCache())
    request.system = [TextBlock("be brief")]
    assert encode_request_json(request, "m", stream=False) == (
        b'{"model":"m","max_tokens":10,"temperature":1.50,"messages":[{"role":"user","content":"hi"}],'
        b'"system":[{"type":"text","text":"be brief"}],"stream":false}'
    )
    assert orjson.loads(raw)["system"] == "be  brief"
