"""Claude Code session identity and the per-session usage the long-context scenario reads.

Claude Code names its session in the ``x-claude-code-session-id`` header; older versions only put
it in ``metadata.user_id``, either as a JSON string (``{"device_id": ..., "account_uuid": ...,
"session_id": ...}``) or as ``user_<hash>_account_<uuid>_session_<uuid>`` (the form
claude-code-router splits on ``_session_``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import orjson
from multidict import CIMultiDict, CIMultiDictProxy

from ccrouter.messages import MessagesRequest, Usage

__all__ = ["SESSION_HEADER", "SessionUsage", "session_id"]

SESSION_HEADER = "x-claude-code-session-id"
_LEGACY_MARKER = "_session_"
# What aiohttp hands over: ``get`` already ignores case.
_CASE_INSENSITIVE = (CIMultiDict, CIMultiDictProxy)


def session_id(request: MessagesRequest, headers: Mapping[str, str]) -> str | None:
    """The client's session id, or None when it sent none."""
    header = headers.get(SESSION_HEADER)
    if header is None and not isinstance(headers, _CASE_INSENSITIVE):
        # A plain dict is not case-insensitive like the server's header mappings are.
        header = next((v for k, v in headers.items() if k.lower() == SESSION_HEADER), None)
    if header and header.strip():
        return header.strip()
    user_id = request.metadata.get("user_id")
    if not isinstance(user_id, str) or not user_id:
        return None
    if user_id.startswith("{"):
        return _from_json(user_id)
    _, marker, tail = user_id.partition(_LEGACY_MARKER)
    return (tail or None) if marker else None


def _from_json(user_id: str) -> str | None:
    try:
        data = orjson.loads(user_id)
    except orjson.JSONDecodeError:
        return None
    value = data.get("session_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None


class SessionUsage:
    """Last reported input size per session (input + cache read + cache creation), LRU-bounded."""

    def __init__(self, *, max_sessions: int = 10_000) -> None:
        self._max_sessions = max_sessions
        self._last: OrderedDict[str, int] = OrderedDict()

    def record(self, session_id: str, usage: Usage) -> None:
        total = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
        if total <= 0:
            # A failed or empty turn reports nothing: keep the last real figure.
            return
        self._last[session_id] = total
        self._last.move_to_end(session_id)
        while len(self._last) > self._max_sessions:
            self._last.popitem(last=False)

    def last_input(self, session_id: str) -> int | None:
        return self._last.get(session_id)

    def __len__(self) -> int:
        return len(self._last)
