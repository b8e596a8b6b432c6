"""System messages inside a conversation, for wire formats that only take a system prompt up front.

Claude Code 2.1.3xx puts ``role: "system"`` messages inside ``messages``: an ``# Environment`` note
right after the first user turn and a ``<total_tokens>N tokens left</total_tokens>`` note after each
tool result, so a tool turn can end with a system message. Sent as such to an OpenAI-format target,
the model sees a system turn, not the tool result, as the turn to answer, and servers that render a
chat template refuse it outright: Qwen3.5/3.6's official template raises "System message must be at
the beginning" (reported against other agents, e.g. anomalyco/opencode#16560). Gemini has no system
role inside ``contents`` at all.

The rule for those wires: a system message inside the conversation is user text, in place, wrapped
in ``<system-reminder>`` tags (Claude Code's own marking of context it injects into user turns) so the
model can tell it from what the user typed. On the OpenAI wire it is a ``user`` message of its own
(its translation then depends on it alone, which ``openai.memo`` needs), so two user messages can
follow each other, as OpenAI and the common templates accept; Gemini joins it to the adjacent user
turn. The Anthropic wire keeps system messages as they are.
"""

from __future__ import annotations

__all__ = ["system_note"]

_OPEN, _CLOSE = "<system-reminder>", "</system-reminder>"


def system_note(text: str) -> str:
    """``text`` of an in-conversation system message, as text for a user turn."""
    stripped = text.strip()
    if stripped.startswith(_OPEN) and stripped.endswith(_CLOSE):
        return text  # already marked (a client that wrapped it itself)
    return f"{_OPEN}\n{text}\n{_CLOSE}"
