"""Anthropic tool search for targets that have none (OpenAI chat, Gemini): pure helpers the encoders share.

Claude Code 2.1.332 (betas ``advanced-tool-use-2025-11-20``, ``mid-conversation-tool-changes-2026-07-01``)
sends a short tool list plus a ``DeferredToolPlaceholder`` with ``defer_loading: true``; when the
model calls its ToolSearch tool, the tool result holds ``{"type": "tool_reference", "tool_name": ...}``
blocks and the next requests carry each referenced tool's full definition with ``defer_loading: true``
(``tests/fixtures/claude_code_tool_search.json``). Anthropic's API loads a deferred tool once a
``tool_reference`` names it (https://platform.claude.com/docs/en/agents-and-tools/tool-use/tool-search-tool,
"Custom tool search implementation"). A target without tool search gets the same effect when it is
sent the non-deferred tools plus the deferred ones some reference names, as ordinary tools, and each
reference as text (``reference_text``).

Everything here is computed from the request alone, every time: a tool list that grows between turns
(or a reference that appears later in the conversation) is seen on the very request that has it.
"""

from __future__ import annotations

from collections.abc import Iterable

from ccrouter.messages import Message, Tool, ToolReferenceBlock, ToolResultBlock

__all__ = ["callable_tools", "reference_text", "referenced_tools"]


def referenced_tools(messages: Iterable[Message]) -> frozenset[str]:
    """The names the conversation's ``tool_reference`` blocks load."""
    names: set[str] = set()
    for message in messages:
        if message.role != "user":
            continue
        for block in message.content:
            if type(block) is ToolResultBlock:
                for part in block.content:
                    if type(part) is ToolReferenceBlock:
                        names.add(part.tool_name)
    return frozenset(names)


def callable_tools(tools: list[Tool], messages: Iterable[Message]) -> list[Tool]:
    """The tools a target without tool search is sent: the non-deferred ones and the deferred ones
    a ``tool_reference`` loaded (so Claude Code's placeholder, never referenced, is left out). The
    same list when no tool is deferred (the common case costs one pass over the tools)."""
    if not any(tool.defer_loading for tool in tools):
        return tools
    loaded = referenced_tools(messages)
    return [tool for tool in tools if not tool.defer_loading or tool.name in loaded]


def reference_text(parts: Iterable[object]) -> str | None:
    """What a target reads for the ``tool_reference`` parts of one tool result (None: there are none)."""
    names = [part.tool_name for part in parts if type(part) is ToolReferenceBlock]
    if not names:
        return None
    return "Loaded tools: " + ", ".join(dict.fromkeys(names))
