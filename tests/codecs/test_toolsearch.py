"""Tool search (deferred tools and ``tool_reference`` results) for targets without it, and kept for
Anthropic. The goldens ``claude_code_2_1_332_tool_search`` (openai, gemini, anthropic) show the
Claude Code request; these tests show the rules: what is offered, a list that grows between turns, a
reference that appears later while the tool list stays the same objects (the encode memo)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import orjson

from ccrouter.codecs.anthropic.codec import decode_request
from ccrouter.codecs.anthropic.encode import encode_request as encode_anthropic
from ccrouter.codecs.gemini.codec import encode_request as encode_gemini
from ccrouter.codecs.openai.chat import Dialect
from ccrouter.codecs.openai.chat import encode_request as encode_openai
from ccrouter.codecs.openai.memo import EncodeMemo
from ccrouter.codecs.toolsearch import callable_tools, reference_text
from ccrouter.messages import MessagesRequest, TextBlock, ToolReferenceBlock, ToolResultBlock

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "claude_code_tool_search.json"


def _captured() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    return data


def _body(index: int) -> dict[str, Any]:
    """Claude Code's request ``index`` (0: first turn, 1: after ToolSearch, 2: after Glob)."""
    captured = _captured()["requests"][index]
    return {
        "model": "claude-opus-5-5",
        "max_tokens": 128000,
        "stream": True,
        "messages": captured["messages"],
        "tools": captured["tools"],
    }


def _openai_tools(request: MessagesRequest, memo: EncodeMemo | None = None) -> list[str]:
    body, _ = encode_openai(request, "gpt-4.1", stream=True, dialect=Dialect(), memo=memo)
    raw = orjson.loads(orjson.dumps(body))  # the memo's parts are orjson.Fragments
    return [tool["function"]["name"] for tool in raw.get("tools", [])]


def test_the_captured_shapes() -> None:
    """What Claude Code 2.1.332 sends (the fixture is a trimmed capture): a placeholder with
    defer_loading, then the loaded deferred tool with defer_loading, and tool_reference blocks."""
    first, second = _body(0), _body(1)
    placeholder = [tool for tool in first["tools"] if tool.get("defer_loading")]
    assert placeholder == [
        {
            "name": "DeferredToolPlaceholder",
            "description": (
                "Reserved placeholder that keeps deferred tool loading active; never call this tool."
            ),
            "input_schema": {"type": "object", "properties": {}},
            "defer_loading": True,
        }
    ]
    deferred = [tool["name"] for tool in second["tools"] if tool.get("defer_loading")]
    assert deferred == ["NotebookEdit", "DeferredToolPlaceholder"]
    result = second["messages"][-1]["content"][0]
    assert result["content"] == [
        {"type": "tool_reference", "tool_name": "Glob"},
        {"type": "tool_reference", "tool_name": "NotebookEdit"},
    ]


def test_decoded_into_the_canonical_model() -> None:
    request = decode_request(_body(1))
    assert [tool.name for tool in request.tools if tool.defer_loading] == [
        "NotebookEdit",
        "DeferredToolPlaceholder",
    ]
    result = request.messages[-1].content[0]
    assert isinstance(result, ToolResultBlock)
    assert result.content == [ToolReferenceBlock("Glob"), ToolReferenceBlock("NotebookEdit")]


def test_offered_tools_leave_out_deferred_ones_no_reference_loads() -> None:
    first, second = decode_request(_body(0)), decode_request(_body(1))
    assert "DeferredToolPlaceholder" not in [
        tool.name for tool in callable_tools(first.tools, first.messages)
    ]
    offered = [tool.name for tool in callable_tools(second.tools, second.messages)]
    assert "NotebookEdit" in offered
    assert "DeferredToolPlaceholder" not in offered
    # No deferred tool at all: the very list, nothing scanned or copied.
    plain = [tool for tool in first.tools if not tool.defer_loading]
    assert callable_tools(plain, first.messages) is plain


def test_reference_text_names_each_tool_once() -> None:
    parts = [
        ToolReferenceBlock("Glob"),
        TextBlock("x"),
        ToolReferenceBlock("Grep"),
        ToolReferenceBlock("Glob"),
    ]
    assert reference_text(parts) == "Loaded tools: Glob, Grep"
    assert reference_text([TextBlock("x")]) is None


def test_a_tool_list_that_grows_between_turns_reaches_openai_through_the_memo() -> None:
    memo = EncodeMemo()
    turns = [decode_request(_body(index)) for index in range(3)]
    offered = []
    for request in turns:
        request.shared_parts = True  # as the body cache marks Claude Code's resent parts
        offered.append(_openai_tools(request, memo))
    assert "NotebookEdit" not in offered[0]
    assert "NotebookEdit" in offered[1]
    assert "NotebookEdit" in offered[2]
    assert all("DeferredToolPlaceholder" not in names for names in offered)


def test_a_reference_that_appears_later_loads_a_tool_sent_deferred_from_the_start() -> None:
    """A client may send every deferred tool from the first turn (Anthropic's own examples do):
    the same Tool objects, first unreferenced, then referenced. The memo must not replay turn one."""
    later = decode_request(_body(1))
    earlier = dataclasses.replace(later, messages=later.messages[:2])  # before the ToolSearch call
    memo = EncodeMemo()
    for request in (earlier, later):
        request.shared_parts = True
    assert "NotebookEdit" not in _openai_tools(earlier, memo)
    assert "NotebookEdit" in _openai_tools(later, memo)


def test_gemini_gets_loaded_tools_as_declarations_and_references_as_text() -> None:
    body, _ = encode_gemini(decode_request(_body(2)), "gemini-2.5-flash")
    declared = [item["name"] for item in body["tools"][0]["functionDeclarations"]]
    assert "NotebookEdit" in declared
    assert "DeferredToolPlaceholder" not in declared
    assert "defer_loading" not in json.dumps(body)
    responses = [
        part["functionResponse"]
        for content in body["contents"]
        for part in content["parts"]
        if "functionResponse" in part
    ]
    assert responses[0]["response"] == {"output": "Loaded tools: Glob, NotebookEdit"}


def test_anthropic_keeps_defer_loading_and_references_when_it_encodes_again() -> None:
    """A rebuilt body (not the client's bytes: e.g. a transformer edited the messages) still carries
    what tool search needs."""
    request = decode_request(_body(1))
    edited = dataclasses.replace(request, received=None)
    body = encode_anthropic(edited, "claude-opus-5-5", stream=True)
    assert [tool["name"] for tool in body["tools"] if tool.get("defer_loading")] == [
        "NotebookEdit",
        "DeferredToolPlaceholder",
    ]
    assert body["messages"][-1]["content"][0]["content"] == _body(1)["messages"][-1]["content"][0]["content"]
