"""A whole canonical response as the canonical stream a provider would have sent for it."""

from __future__ import annotations

import orjson

from ccrouter.messages import (
    BlockDelta,
    BlockStart,
    BlockStop,
    InputJsonDelta,
    MessageDelta,
    MessagesResponse,
    MessageStart,
    MessageStop,
    SignatureDelta,
    StreamEvent,
    TextBlock,
    TextDelta,
    ThinkingBlock,
    ThinkingDelta,
    ToolUseBlock,
    Usage,
)

__all__ = ["response_events"]


def response_events(response: MessagesResponse) -> list[StreamEvent]:
    """The stream a provider would have sent for ``response``, in Anthropic's grammar: message_start
    (input usage), each block as start, one delta, stop; message_delta (stop reason, usage);
    message_stop."""
    usage = response.usage
    start_usage = Usage(
        input_tokens=usage.input_tokens,
        cache_read_input_tokens=usage.cache_read_input_tokens,
        cache_creation_input_tokens=usage.cache_creation_input_tokens,
    )
    events: list[StreamEvent] = [MessageStart(response.id, response.model, start_usage)]
    for index, block in enumerate(response.content):
        if isinstance(block, TextBlock):
            events.append(BlockStart(index, TextBlock("")))
            if block.text:
                events.append(BlockDelta(index, TextDelta(block.text)))
        elif isinstance(block, ThinkingBlock) and not block.redacted:
            events.append(BlockStart(index, ThinkingBlock("", origin=block.origin)))
            if block.thinking:
                events.append(BlockDelta(index, ThinkingDelta(block.thinking)))
            if block.signature:
                events.append(BlockDelta(index, SignatureDelta(block.signature)))
        elif isinstance(block, ToolUseBlock):
            events.append(BlockStart(index, ToolUseBlock(block.id, block.name, {})))
            events.append(BlockDelta(index, InputJsonDelta(orjson.dumps(block.input).decode())))
        else:  # redacted thinking and server tool blocks arrive whole
            events.append(BlockStart(index, block))
        events.append(BlockStop(index))
    events.append(MessageDelta(response.stop_reason, response.stop_sequence, usage))
    events.append(MessageStop())
    return events
