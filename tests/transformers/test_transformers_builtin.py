"""Each built-in transformer's effect on the canonical request, response and stream (pure)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ccrouter.errors import ConfigError
from ccrouter.messages import (
    BlockDelta,
    BlockStart,
    BlockStop,
    InputJsonDelta,
    Message,
    MessageDelta,
    MessagesRequest,
    MessagesResponse,
    MessageStart,
    MessageStop,
    OtherBlock,
    StreamEvent,
    TextBlock,
    TextDelta,
    ThinkingConfig,
    Tool,
    ToolChoice,
    ToolResultBlock,
    ToolUseBlock,
)
from ccrouter.plugins import Registry, load_plugins
from ccrouter.transformers.base import Transformer

CACHE = {"type": "ephemeral"}
REGISTRY = Registry.build(load_plugins(entry_points=False))


def make(name: str, **options: Any) -> Transformer:
    return REGISTRY.transformers[name](options)


def request(**fields: Any) -> MessagesRequest:
    base: dict[str, Any] = {
        "model": "m",
        "messages": [Message("user", [TextBlock("hi", cache_control=CACHE)])],
        "max_tokens": 32000,
    }
    return MessagesRequest(**{**base, **fields})


def run_stream(transformer: Transformer, batches: list[list[StreamEvent]]) -> list[StreamEvent]:
    stage = transformer.stream("m")
    assert stage is not None
    out: list[StreamEvent] = []
    for batch in batches:
        out += stage.feed(batch)
    return out + stage.finish()


def test_the_builtins_are_registered() -> None:
    assert {
        "maxtoken",
        "sampling",
        "cleancache",
        "customparams",
        "reasoning",
        "tooluse",
        "enhancetool",
    } <= set(REGISTRY.transformers)


def test_maxtoken_caps() -> None:
    original = request()
    capped = make("maxtoken", max_tokens=8192).request(original, "m")
    assert (capped.max_tokens, original.max_tokens) == (8192, 32000)
    # Copy-on-write: the messages are still the original's, so a passthrough sends them as received.
    assert capped.messages is original.messages
    assert make("maxtoken", max_tokens=64000).request(original, "m") is original


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="max_tokens: Field required"):
        make("maxtoken")
    with pytest.raises(ConfigError, match="tempurature: Extra inputs are not permitted"):
        make("sampling", tempurature=0.2)


def test_sampling_forces_its_settings() -> None:
    sampling = make(
        "sampling", temperature=0.6, top_p=0.95, top_k=20, max_tokens=4096, repetition_penalty=1.05
    )
    out = sampling.request(request(temperature=1.0), "m")
    assert (out.temperature, out.top_p, out.top_k, out.max_tokens) == (0.6, 0.95, 20, 4096)
    assert sampling.params(out, "m", "openai") == {"top_k": 20, "repetition_penalty": 1.05}
    assert sampling.params(out, "m", "anthropic") == {}


def test_cleancache_removes_every_cache_control() -> None:
    original = request(
        system=[TextBlock("sys", cache_control=CACHE)],
        messages=[
            Message(
                "user",
                [
                    TextBlock("a", cache_control=CACHE),
                    OtherBlock({"type": "document", "cache_control": CACHE}),
                ],
            ),
            Message("assistant", [ToolUseBlock("t1", "read", {}, cache_control=CACHE)]),
            Message(
                "user", [ToolResultBlock("t1", [TextBlock("r", cache_control=CACHE)], cache_control=CACHE)]
            ),
        ],
        tools=[
            Tool("read", cache_control=CACHE),
            Tool("web", server_type="web_search", raw={"cache_control": CACHE}),
        ],
    )
    out = make("cleancache").request(original, "m")
    assert '"cache_control":{' not in orjson.dumps([out.system, out.messages, out.tools]).decode()
    assert all(block.cache_control is None for block in out.system)
    assert out.messages[0].content[1] == OtherBlock({"type": "document"})
    result = out.messages[2].content[0]
    assert isinstance(result, ToolResultBlock)
    assert result.cache_control is None
    assert result.content[0].cache_control is None
    assert [tool.cache_control for tool in out.tools] == [None, None]
    assert out.tools[1].raw == {}
    # The request it was given is untouched (its parts may be shared with other requests).
    assert original.system[0].cache_control == CACHE
    assert original.messages[0].content[0].cache_control == CACHE  # type: ignore[union-attr]


def test_customparams_are_body_fields_for_every_wire() -> None:
    custom = make("customparams", chat_template_kwargs={"enable_thinking": False}, provider={"only": ["x"]})
    fields = {"chat_template_kwargs": {"enable_thinking": False}, "provider": {"only": ["x"]}}
    assert custom.params(request(), "m", "openai") == fields
    assert custom.params(request(), "m", "gemini") == fields


def test_reasoning_sends_the_thinking_switch() -> None:
    on = make("reasoning")
    thinking = request(thinking=ThinkingConfig("enabled", 2048))
    assert on.request(thinking, "m") is thinking
    assert on.params(thinking, "m", "openai") == {
        "enable_thinking": True,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
    }
    assert on.params(request(), "m", "openai") == {}
    off = make("reasoning", enable=False)
    out = off.request(request(thinking=ThinkingConfig("enabled", 2048), effort="high"), "m")
    assert (out.thinking.on, out.effort) == (False, None)
    assert off.params(out, "m", "openai") == {"enable_thinking": False, "thinking": {"type": "disabled"}}


def test_tooluse_asks_for_a_tool_and_offers_exit_tool() -> None:
    original = request(tools=[Tool("read", input_schema={"type": "object"})])
    out = make("tooluse").request(original, "m")
    assert [tool.name for tool in out.tools] == ["read", "ExitTool"]
    assert out.tool_choice == ToolChoice("any")
    assert out.messages[-1].role == "system"
    assert "ExitTool" in out.messages[-1].content[0].text
    assert len(original.messages) == 1
    assert len(original.tools) == 1
    # No tools: nothing to force. A named tool choice is the client's: kept.
    plain = request()
    assert make("tooluse").request(plain, "m") is plain
    named = make("tooluse").request(
        request(tools=original.tools, tool_choice=ToolChoice("tool", "read")), "m"
    )
    assert named.tool_choice == ToolChoice("tool", "read")


def test_tooluse_turns_exit_tool_into_text() -> None:
    answer = MessagesResponse(
        id="msg_1",
        model="m",
        content=[ToolUseBlock("call_1", "ExitTool", {"response": "No tool fits: 4."})],
        stop_reason="tool_use",
        raw_body=b"{}",
    )
    out = make("tooluse").response(answer, "m")
    assert out.content == [TextBlock("No tool fits: 4.")]
    assert (out.stop_reason, out.raw_body) == ("end_turn", None)
    both = MessagesResponse(
        "msg_2", "m", [ToolUseBlock("c1", "ExitTool", {}), ToolUseBlock("c2", "read", {})], "tool_use"
    )
    out = make("tooluse").response(both, "m")
    assert out.stop_reason == "tool_use"
    assert out.content[0] == TextBlock("")


def test_tooluse_stream_turns_exit_tool_into_a_text_block() -> None:
    events: list[list[StreamEvent]] = [
        [MessageStart("msg_1", "m"), BlockStart(0, ToolUseBlock("c1", "ExitTool"))],
        [BlockDelta(0, InputJsonDelta('{"respon')), BlockDelta(0, InputJsonDelta('se": "Done."}'))],
        [BlockStop(0), MessageDelta("tool_use"), MessageStop()],
    ]
    out = run_stream(make("tooluse"), events)
    assert out[1:] == [
        BlockStart(0, TextBlock("")),
        BlockDelta(0, TextDelta("Done.")),
        BlockStop(0),
        MessageDelta("end_turn"),
        MessageStop(),
    ]


def test_enhancetool_stream_sends_repaired_arguments_in_one_piece() -> None:
    events: list[list[StreamEvent]] = [
        [
            MessageStart("msg_1", "m"),
            BlockStart(0, TextBlock("")),
            BlockDelta(0, TextDelta("ok")),
            BlockStop(0),
        ],
        [BlockStart(1, ToolUseBlock("c1", "write")), BlockDelta(1, InputJsonDelta("{'path': 'a.txt',"))],
        [BlockDelta(1, InputJsonDelta(" 'body': 'x'")), BlockStop(1), MessageDelta("tool_use")],
    ]
    out = run_stream(make("enhancetool"), events)
    assert out[:4] == events[0]  # text passes untouched
    assert out[4:] == [
        BlockStart(1, ToolUseBlock("c1", "write")),
        BlockDelta(1, InputJsonDelta('{"path":"a.txt","body":"x"}')),
        BlockStop(1),
        MessageDelta("tool_use"),
    ]
