"""Response ids in the client's format: Anthropic's ``msg_...``, OpenAI's ``chatcmpl-...``, the
Responses API's ``resp_...``, Gemini's bare ``responseId``.

A translated response carries its upstream's id (an OpenAI-format server's ``chatcmpl-...``, an
Anthropic ``msg_...``, Gemini's ``responseId``). The encoder of the client's format, and only it, gives
the id the client's prefix, keeping the rest so that it still leads to the upstream's own logs. An
upstream body or stream passed through unchanged keeps its id as sent.
"""

from __future__ import annotations

import secrets

__all__ = ["ANTHROPIC_ID_PREFIX", "GEMINI_ID_PREFIX", "OPENAI_ID_PREFIX", "RESPONSE_ID_PREFIX", "client_id"]

ANTHROPIC_ID_PREFIX = "msg_"
OPENAI_ID_PREFIX = "chatcmpl-"
RESPONSE_ID_PREFIX = "resp_"
# Gemini's ids carry no prefix: another format's is taken off.
GEMINI_ID_PREFIX = ""
_PREFIXES = (ANTHROPIC_ID_PREFIX, OPENAI_ID_PREFIX, RESPONSE_ID_PREFIX)


def client_id(upstream_id: str, prefix: str) -> str:
    """``upstream_id`` with the client's ``prefix`` instead of another format's (a fresh one if empty)."""
    if prefix and upstream_id.startswith(prefix) and len(upstream_id) > len(prefix):
        return upstream_id
    for other in _PREFIXES:
        if upstream_id.startswith(other):
            upstream_id = upstream_id[len(other) :]
            break
    return prefix + (upstream_id or secrets.token_hex(12))
