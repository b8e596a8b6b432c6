"""Edits of a canonical request's prompt text, copy-on-write: changed blocks, messages and lists are
new objects and unchanged ones are shared, so the original request (and the decode cache's shared
objects) never change, and the encoder of the client's own wire format sees which fields changed
(``ccrouter.messages.Received``).

The scope of an edit is the system prompt and the messages before the first user message that play
the system role, plus, when asked, the first user message: where Claude Code and claude-code-router
put the text we look for (the billing line, ``ccrouter.codecs.billing``; the subagent tag,
``ccrouter.routing.prepare``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ccrouter.messages import ContentBlock, Message, MessagesRequest, TextBlock

__all__ = ["CleanTexts", "Edit", "edit_prompt"]

# Returns the edited text, or None when the text is not concerned (the common, allocation-free case).
Edit = Callable[[str], str | None]


class CleanTexts:
    """Texts an edit found nothing to change in, by identity: the decode cache hands out the same
    text objects turn after turn (the long system prompt, the history), so each is scanned once.
    Holds the texts it answers for (their ids stay theirs); only long ones, bounded in size, and
    none past a sixteenth of the bound: a huge text is rescanned (at memchr speed) rather than kept
    alive after its request."""

    MIN_CHARS = 1024

    def __init__(self, *, max_chars: int = 8_000_000) -> None:
        self._max_chars = max_chars
        self._max_text = max_chars // 16
        self._texts: dict[int, str] = {}
        self._chars = 0

    def __contains__(self, text: str) -> bool:
        return self._texts.get(id(text)) is text

    def add(self, text: str) -> None:
        if not self.MIN_CHARS <= len(text) <= self._max_text:
            return
        if self._chars + len(text) > self._max_chars:
            self._texts.clear()
            self._chars = 0
        self._texts[id(text)] = text
        self._chars += len(text)


def edit_prompt(
    request: MessagesRequest, edit: Edit, *, first_user: bool
) -> tuple[list[TextBlock] | None, list[Message] | None]:
    """The request's system blocks and messages with ``edit`` applied in scope, each None when the
    edit changed nothing there. Whitespace-only results are dropped. ``request`` is not changed."""
    system = _edit_blocks(request.system, edit)
    messages: list[Message] | None = None
    for index, message in enumerate(request.messages):
        if message.role == "assistant" or (message.role == "user" and not first_user):
            break
        content = _edit_blocks(message.content, edit)
        if content is not None:
            if messages is None:
                messages = list(request.messages)
            messages[index] = Message(role=message.role, content=content)
        if message.role == "user":
            break
    return (None if system is None else [b for b in system if isinstance(b, TextBlock)]), messages


def _edit_blocks(blocks: list[TextBlock] | list[ContentBlock], edit: Edit) -> list[ContentBlock] | None:
    """The blocks with text edited (whitespace-only results dropped), or None if none changed."""
    changed = False
    out: list[ContentBlock] = []
    for block in blocks:
        if isinstance(block, TextBlock):
            text = edit(block.text)
            if text is not None:
                changed = True
                if text.strip():
                    out.append(dataclasses.replace(block, text=text))
                continue
        out.append(block)
    return out if changed else None
