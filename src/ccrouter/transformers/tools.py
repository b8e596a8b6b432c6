"""Built-in transformers about tool calls: claude-code-router's ``tooluse`` and ``enhancetool``
(their behaviour follows musistudio/llms, ``src/transformer/{tooluse,enhancetool}.transformer.ts``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import orjson

from ccrouter.codecs.openai.toolnames import parse_arguments
from ccrouter.messages import (
    BlockDelta,
    BlockStart,
    BlockStop,
    ContentBlock,
    InputJsonDelta,
    Message,
    MessageDelta,
    MessagesRequest,
    MessagesResponse,
    StreamEvent,
    TextBlock,
    TextDelta,
    Tool,
    ToolChoice,
    ToolUseBlock,
)
from ccrouter.transformers.base import StreamTransform, Transformer, detached
from ccrouter.transformers.options import Options, parse_options

__all__ = ["EXIT_TOOL", "EnhanceTool", "ToolUse"]

EXIT_TOOL = "ExitTool"
_REMINDER = (
    "<system-reminder>Tool mode is active. The user expects you to proactively execute the most suitable"
    " tool to help complete the task.\nBefore invoking a tool, you must carefully evaluate whether it"
    " matches the current task. If no available tool is appropriate for the task, you MUST call the"
    f" `{EXIT_TOOL}` to exit tool mode — this is the only valid way to terminate tool mode.\nAlways"
    " prioritize completing the user's task effectively and efficiently by using tools whenever"
    " appropriate.</system-reminder>"
)
_EXIT_TOOL = Tool(
    name=EXIT_TOOL,
    description=(
        "Use this tool when you are in tool mode and have completed the task. This is the only valid way"
        " to exit tool mode.\nIMPORTANT: Before using this tool, ensure that none of the available tools"
        " are applicable to the current task. Only if no suitable tool can help you complete the task"
        " should you use ExitTool to terminate tool mode."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "response": {
                "type": "string",
                "description": "Your response will be forwarded to the user exactly as returned.",
            }
        },
        "required": ["response"],
    },
)


class ToolUse(Transformer):
    """For models that answer in text when they should call a tool: when the request has tools, the
    model must call one (``tool_choice: any``), and gets an ``ExitTool`` whose ``response`` argument
    is its answer when no tool fits. ``ExitTool`` calls come back as plain text; a turn that called
    nothing else ends as ``end_turn``. An explicit ``tool_choice`` (a named tool, or none) is kept."""

    name = "tooluse"

    def __init__(self, options: Mapping[str, Any]) -> None:
        parse_options(Options, options)

    def request(self, request: MessagesRequest, model: str) -> MessagesRequest:
        if not request.tools or any(tool.name == EXIT_TOOL for tool in request.tools):
            return request
        new = detached(request)
        new.messages = [*request.messages, Message("system", [TextBlock(_REMINDER)])]
        new.tools = [*request.tools, _EXIT_TOOL]
        choice = request.tool_choice
        if choice is None or choice.type in ("auto", "any"):
            parallel = choice.disable_parallel_tool_use if choice is not None else False
            new.tool_choice = ToolChoice("any", disable_parallel_tool_use=parallel)
        return new

    def response(self, response: MessagesResponse, model: str) -> MessagesResponse:
        if not any(_is_exit(block) for block in response.content):
            return response
        content: list[ContentBlock] = []
        for block in response.content:
            if isinstance(block, ToolUseBlock) and _is_exit(block):
                text = block.input.get("response")
                content.append(TextBlock(text if isinstance(text, str) else ""))
            else:
                content.append(block)
        stop = response.stop_reason
        if stop == "tool_use" and not any(isinstance(block, ToolUseBlock) for block in content):
            stop = "end_turn"
        return dataclasses.replace(response, content=content, stop_reason=stop, raw_body=None)

    def stream(self, model: str) -> StreamTransform:
        return _ExitToolStream()


def _is_exit(block: ContentBlock) -> bool:
    return isinstance(block, ToolUseBlock) and block.name == EXIT_TOOL


class _ExitToolStream:
    """Holds an ExitTool block back and sends it as a text block at the same index."""

    __slots__ = ("_arguments", "_exit_index", "_exited", "_other_tool")

    def __init__(self) -> None:
        self._exit_index: int | None = None
        self._arguments: list[str] = []
        self._exited = False
        self._other_tool = False

    def feed(self, events: list[StreamEvent]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for event in events:
            if isinstance(event, BlockStart) and isinstance(event.block, ToolUseBlock):
                if event.block.name == EXIT_TOOL:
                    self._exit_index, self._arguments = event.index, []
                    continue
                self._other_tool = True
            elif self._exit_index is not None and getattr(event, "index", None) == self._exit_index:
                if isinstance(event, BlockDelta) and isinstance(event.delta, InputJsonDelta):
                    self._arguments.append(event.delta.partial_json)
                elif isinstance(event, BlockStop):
                    out += self._as_text(event.index)
                continue
            elif (
                isinstance(event, MessageDelta)
                and event.stop_reason == "tool_use"
                and self._exited
                and not self._other_tool
            ):
                event = MessageDelta("end_turn", event.stop_sequence, event.usage)
            out.append(event)
        return out

    def _as_text(self, index: int) -> list[StreamEvent]:
        self._exit_index, self._exited = None, True
        text = parse_arguments("".join(self._arguments)).get("response")
        events: list[StreamEvent] = [BlockStart(index, TextBlock(""))]
        if isinstance(text, str) and text:
            events.append(BlockDelta(index, TextDelta(text)))
        events.append(BlockStop(index))
        return events

    def finish(self) -> list[StreamEvent]:
        # A stream cut inside the ExitTool block: what was said is still the answer.
        return self._as_text(self._exit_index) if self._exit_index is not None else []


class EnhanceTool(Transformer):
    """Streamed tool-call arguments held until the call is complete, then sent as one repaired JSON
    object (strict JSON, else json_repair; a double-encoded object is decoded): for models whose
    arguments arrive malformed. Tool calls are then no longer streamed piece by piece. Non-streamed
    arguments need nothing: every decoder already repairs them the same way."""

    name = "enhancetool"

    def __init__(self, options: Mapping[str, Any]) -> None:
        parse_options(Options, options)

    def stream(self, model: str) -> StreamTransform:
        return _RepairedArguments()


class _RepairedArguments:
    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: dict[int, list[str]] = {}  # tool_use block index -> its argument pieces

    def feed(self, events: list[StreamEvent]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for event in events:
            if isinstance(event, BlockStart) and isinstance(event.block, ToolUseBlock):
                self._held[event.index] = []
            elif isinstance(event, BlockDelta) and event.index in self._held:
                if isinstance(event.delta, InputJsonDelta):
                    self._held[event.index].append(event.delta.partial_json)
                    continue
            elif isinstance(event, BlockStop) and event.index in self._held:
                out.append(self._repaired(event.index))
            out.append(event)
        return out

    def _repaired(self, index: int) -> BlockDelta:
        arguments = parse_arguments("".join(self._held.pop(index)))
        return BlockDelta(index, InputJsonDelta(orjson.dumps(arguments).decode()))

    def finish(self) -> list[StreamEvent]:
        # The decoder closes every block before its stream ends; nothing should be left.
        return [self._repaired(index) for index in list(self._held)]
