"""Pure request preparation: the prompt edit routing itself needs, claude-code-router's subagent tag.

Only the canonical request is edited, copy-on-write (``ccrouter.codecs.prompt``): the encoder of the
client's own wire format sees what changed and sends it (``ccrouter.messages.Received``).
"""

from __future__ import annotations

import re

from ccrouter.codecs.prompt import CleanTexts, edit_prompt
from ccrouter.messages import MessagesRequest

__all__ = ["SUBAGENT_TAG", "CleanTexts", "extract_subagent_model"]

SUBAGENT_TAG = "CCR-SUBAGENT-MODEL"
_SUBAGENT_OPEN = f"<{SUBAGENT_TAG}>"
_SUBAGENT = re.compile(rf"<{SUBAGENT_TAG}>(.*?)</{SUBAGENT_TAG}>", re.DOTALL)


def extract_subagent_model(request: MessagesRequest, clean: CleanTexts | None = None) -> str | None:
    """Find claude-code-router's ``<CCR-SUBAGENT-MODEL>provider,model</CCR-SUBAGENT-MODEL>`` tag,
    remove every such tag from the request (its system prompt and messages are replaced, never
    changed in place), and return the first tag's route (not validated).
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

    system, messages = edit_prompt(request, edit, first_user=True)
    if system is not None:
        request.system = system
    if messages is not None:
        request.messages = messages
    return found[0] if found else None
