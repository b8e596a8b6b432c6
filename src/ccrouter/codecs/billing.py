"""Claude Code's per-request billing line, and the one rule for removing it.

Claude Code starts its system prompt with a line ``x-anthropic-billing-header: cc_version=...;
cch=...;`` that changes on every request. Anthropic's own API reads it; anywhere else it only
defeats the provider's prefix cache (the prompt differs from its first bytes). So every encoder
removes it (``openai.chat``, ``gemini.codec``), and so does the Anthropic adapter for any endpoint
that is not Anthropic's API (``ccrouter.providers.anthropic``).

The rule: every line of the system prompt, or of a system-role message before the first user
message (``ccrouter.codecs.prompt``), that starts with the prefix after leading whitespace is
removed; a block left blank is dropped.
"""

from __future__ import annotations

from ccrouter.codecs.prompt import CleanTexts, edit_prompt
from ccrouter.messages import MessagesRequest

__all__ = ["BILLING_LINE_PREFIX", "strip_billing_line", "without_billing_line"]

BILLING_LINE_PREFIX = "x-anthropic-billing-header:"


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
