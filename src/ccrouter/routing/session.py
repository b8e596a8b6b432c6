"""Claude Code session identity and the per-session usage the long-context scenario reads.

Claude Code names its session in the ``x-claude-code-session-id`` header; older versions only put
it in ``metadata.user_id``, either as a JSON string (``{"device_id": ..., "account_uuid": ...,
"session_id": ...}``) or as ``user_<hash>_account_<uuid>_session_<uuid>`` (the form
claude-code-router splits on ``_session_``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Protocol, TypeVar

import orjson
from multidict import CIMultiDict, CIMultiDictProxy

from ccrouter.messages import MessagesRequest, Usage

__all__ = ["SESSION_HEADER", "SessionRemote", "SessionUsage", "session_id"]

SESSION_HEADER = "x-claude-code-session-id"
_LEGACY_MARKER = "_session_"
# What aiohttp hands over: ``get`` already ignores case.
_CASE_INSENSITIVE = (CIMultiDict, CIMultiDictProxy)
_V = TypeVar("_V")


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


class SessionRemote(Protocol):
    """Where sessions are shared with other instances (``ccrouter.resilience.shared.SharedLive``)."""

    def session_changed(self, session_id: str, route: str | None, input_tokens: int | None) -> None:
        """This instance set a session's route or input size (sent on in the background)."""
        ...

    async def fetch_session(self, session_id: str) -> tuple[str | None, int | None] | None:
        """(route, input size) another instance left for a session (None: none, or unreachable)."""
        ...


class SessionUsage:
    """Per session: the last reported input size (input + cache read + cache creation) and the route
    that last served it (sticky sessions), LRU-bounded. With a ``remote`` (shared state), each change
    is told to it, and a session this instance has not seen yet is read from it once (``load``)."""

    def __init__(self, *, max_sessions: int = 10_000) -> None:
        self._max_sessions = max_sessions
        self._last: OrderedDict[str, int] = OrderedDict()
        self._routes: OrderedDict[str, str] = OrderedDict()
        self.remote: SessionRemote | None = None

    def record(self, session_id: str, usage: Usage) -> None:
        total = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
        if total <= 0:
            # A failed or empty turn reports nothing: keep the last real figure.
            return
        if self.remote is not None and self._last.get(session_id) != total:
            self.remote.session_changed(session_id, None, total)
        _put(self._last, session_id, total, self._max_sessions)

    def last_input(self, session_id: str) -> int | None:
        return self._last.get(session_id)

    def route(self, session_id: str) -> str | None:
        """The route ("provider,model") that last served the session."""
        return self._routes.get(session_id)

    def remember(self, session_id: str, route: str) -> None:
        if self.remote is not None and self._routes.get(session_id) != route:
            self.remote.session_changed(session_id, route, None)
        _put(self._routes, session_id, route, self._max_sessions)

    def apply(self, session_id: str, route: str | None, input_tokens: int | None) -> None:
        """Another instance's change (not told back to the remote)."""
        if route is not None:
            _put(self._routes, session_id, route, self._max_sessions)
        if input_tokens is not None and input_tokens > 0:
            _put(self._last, session_id, input_tokens, self._max_sessions)

    async def load(self, session_id: str) -> None:
        """Read a session this instance knows nothing of from the remote (no-op without one)."""
        if self.remote is None or session_id in self._routes or session_id in self._last:
            return
        found = await self.remote.fetch_session(session_id)
        if found is not None:
            self.apply(session_id, *found)

    def forget(self) -> None:
        """Drop every session (after an outage of the remote: each is read again when next seen)."""
        self._last.clear()
        self._routes.clear()

    def __len__(self) -> int:
        return len(self._last)


def _put(items: OrderedDict[str, _V], key: str, value: _V, limit: int) -> None:
    items[key] = value
    items.move_to_end(key)
    while len(items) > limit:
        items.popitem(last=False)
