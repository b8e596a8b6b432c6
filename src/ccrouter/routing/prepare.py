"""Pure request preparation: edits of the prompt text that routing and dispatch need.

Every edit is made in the canonical request and in ``request.raw`` alike (the rule of
``ccrouter.messages``: a passthrough encoder starts from ``raw``), or ``raw`` is dropped when the
same edit cannot be found there. Edits are copy-on-write: changed blocks, messages and containers
are new objects, so a shallow copy of a request (as dispatch makes) never alters the original.

The scope of an edit is the system prompt and the messages before the first user message that play
the system role, plus, when asked, the first user message: where Claude Code and
claude-code-router put the text we look for.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from ccrouter.messages import ContentBlock, Message, MessagesRequest, TextBlock

__all__ = [
    "BILLING_HEADER_PREFIX",
    "SUBAGENT_TAG",
    "CleanTexts",
    "extract_subagent_model",
    "strip_billing_header",
]

SUBAGENT_TAG = "CCR-SUBAGENT-MODEL"
_SUBAGENT_OPEN = f"<{SUBAGENT_TAG}>"
_SUBAGENT = re.compile(rf"<{SUBAGENT_TAG}>(.*?)</{SUBAGENT_TAG}>", re.DOTALL)
BILLING_HEADER_PREFIX = "x-anthropic-billing-header:"
_SYSTEM_ROLES = ("system", "developer")

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


def extract_subagent_model(request: MessagesRequest, clean: CleanTexts | None = None) -> str | None:
    """Find claude-code-router's ``<CCR-SUBAGENT-MODEL>provider,model</CCR-SUBAGENT-MODEL>`` tag,
    remove every such tag from the request, and return the first tag's route (not validated).
    ``clean``: texts known to hold no tag, kept across requests by the caller."""
    found: list[str] = []
    known = clean if clean is not None else CleanTexts()

    def edit(text: str) -> str | None:
        if text in known:
            return None
        if _SUBAGENT_OPEN not in text:
            known.add(text)
            return None
        routes = [match.strip() for match in _SUBAGENT.findall(text)]
        if not routes:
            return None
        found.extend(routes)
        return _SUBAGENT.sub("", text)

    _apply(request, edit, first_user=True)
    return found[0] if found else None


def strip_billing_header(request: MessagesRequest, clean: CleanTexts | None = None) -> None:
    """Remove Claude Code's per-request ``x-anthropic-billing-header: ...`` line from the system
    prompt (dropping its block when nothing else is left). The line changes on every request, so
    left in it defeats the prefix caches of providers other than Anthropic's own API.
    ``clean``: texts known to hold no such line, kept across requests by the caller."""
    # Without one, a memo for this call: the decoder shares each text between the canonical blocks
    # and ``raw``, so the raw pass finds the long system prompt's answer instead of scanning again.
    known = clean if clean is not None else CleanTexts()

    def edit(text: str) -> str | None:
        if text in known:
            return None
        if BILLING_HEADER_PREFIX not in text:
            known.add(text)
            return None
        lines = text.split("\n")
        kept = [line for line in lines if not line.lstrip().startswith(BILLING_HEADER_PREFIX)]
        return None if len(kept) == len(lines) else "\n".join(kept)

    _apply(request, edit, first_user=False)


# ---------------------------------------------------------------------- canonical + raw


def _apply(request: MessagesRequest, edit: Edit, *, first_user: bool) -> None:
    if not _edit_canonical(request, edit, first_user=first_user):
        return
    if request.raw is not None:
        # A no-op edit on raw (the text is not where we expected it) means we cannot keep raw in
        # sync: drop it, and encoders rebuild the body from the canonical request.
        request.raw = _edit_raw(request.raw, edit, first_user=first_user)


def _edit_canonical(request: MessagesRequest, edit: Edit, *, first_user: bool) -> bool:
    changed = False
    system = _edit_blocks(request.system, edit)
    if system is not None:
        request.system = [block for block in system if isinstance(block, TextBlock)]
        changed = True
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
    if messages is not None:
        request.messages = messages
        changed = True
    return changed


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


def _edit_raw(raw: dict[str, Any], edit: Edit, *, first_user: bool) -> dict[str, Any] | None:
    """A new raw body with the same edit, or None when the edit found nothing there."""
    result: dict[str, Any] | None = None
    if "system" in raw:
        system, changed = _edit_raw_content(raw["system"], edit)
        if changed:
            result = dict(raw)
            if system:
                result["system"] = system
            else:
                del result["system"]
    messages = raw.get("messages")
    if isinstance(messages, list):
        edited = _edit_raw_messages(messages, edit, first_user=first_user)
        if edited is not None:
            result = {**(result or raw), "messages": edited}
    return result


def _edit_raw_messages(messages: list[Any], edit: Edit, *, first_user: bool) -> list[Any] | None:
    out: list[Any] | None = None
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "assistant" or (role == "user" and not first_user):
            break
        if role not in (*_SYSTEM_ROLES, "user"):
            continue
        content, changed = _edit_raw_content(message.get("content"), edit)
        if changed:
            if out is None:
                out = list(messages)
            out[index] = {**message, "content": content}
        if role == "user":
            break
    return out


def _edit_raw_content(content: Any, edit: Edit) -> tuple[Any, bool]:
    """Edit a wire ``content``/``system`` value: a string or a list of text parts."""
    if isinstance(content, str):
        text = edit(content)
        return (content, False) if text is None else (text if text.strip() else "", True)
    if not isinstance(content, list):
        return content, False
    changed = False
    out: list[Any] = []
    for part in content:
        text = _raw_part_text(part)
        edited = None if text is None else edit(text)
        if edited is None:
            out.append(part)
            continue
        changed = True
        if edited.strip():
            out.append({**part, "text": edited})
    return (out, True) if changed else (content, False)


def _raw_part_text(part: Any) -> str | None:
    if isinstance(part, dict) and part.get("type", "text") == "text":
        text = part.get("text")
        return text if isinstance(text, str) else None
    return None
