"""Claude Code's per-request billing line, and the one rule for removing it.

Claude Code starts its system prompt with a line ``x-anthropic-billing-header: cc_version=...;
cch=...;`` that changes on every request. Anthropic's own API reads it; anywhere else it only
defeats the provider's prefix cache (the prompt differs from its first bytes). So every encoder
removes it (``openai.chat``, ``gemini.codec``), and so does the Anthropic adapter for any endpoint
that is not Anthropic's API (``ccrouter.providers.anthropic``).

The rule: every line of the system prompt, or of a system-role message before the first user
message (``ccrouter.codecs.prompt``), that starts with the prefix after leading whitespace is
removed; a block left blank is dropped.

The line also says whether the request comes from one of Claude Code's subagents (the Agent/Task
tool): ``cc_is_subagent=true;`` (observed with Claude Code 2.1.332; its main thread sends no such
field, and both share ``x-claude-code-session-id``).
"""

from __future__ import annotations

from ccrouter.codecs.prompt import CleanTexts, edit_prompt
from ccrouter.messages import MessagesRequest

__all__ = [
    "BILLING_LINE_PREFIX",
    "SUBAGENT_FLAG",
    "is_subagent",
    "strip_billing_line",
    "without_billing_line",
]

BILLING_LINE_PREFIX = "x-anthropic-billing-header:"
SUBAGENT_FLAG = "cc_is_subagent=true"
# The billing line is short (~100 characters); look no further into a block than this for it.
_MAX_LINE = 4096


def is_subagent(request: MessagesRequest) -> bool:
    """Whether the billing line of ``request``'s system prompt carries ``cc_is_subagent=true``."""
    for block in request.system:
        text = block.text
        start = text.find(BILLING_LINE_PREFIX)
        if start < 0 or text[text.rfind("\n", 0, start) + 1 : start].strip():
            continue  # none, or not at the start of a line
        end = text.find("\n", start, start + _MAX_LINE)
        line = text[start : end if end >= 0 else start + _MAX_LINE]
        if any(field.strip() == SUBAGENT_FLAG for field in line[len(BILLING_LINE_PREFIX) :].split(";")):
            return True
    return False


def strip_billing_line(text: str) -> str | None:
    """``text`` without its billing lines, or None when it has none."""
    if BILLING_LINE_PREFIX not in text:
        return None
    lines = text.split("\n")
    kept = [line for line in lines if not line.lstrip().startswith(BILLING_LINE_PREFIX)]
    return None if len(kept) == len(lines) else "\n".join(kept)


def without_billing_line(request: MessagesRequest, clean: CleanTexts | None = None) -> MessagesRequest:
    """``request`` itself when it holds no billing line, else a shallow copy without it.
    ``clean``: texts known to hold none, kept across requests by the caller."""
    known = clean if clean is not None else CleanTexts()

    def edit(text: str) -> str | None:
        if text in known:
            return None
        stripped = strip_billing_line(text)
        if stripped is None:
            known.add(text)
        return stripped

    system, messages = edit_prompt(request, edit, first_user=False)
    if system is None and messages is None:
        return request
    stripped = request.copy()
    if system is not None:
        stripped.system = system
    if messages is not None:
        stripped.messages = messages
    return stripped
