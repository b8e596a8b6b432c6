"""The gateway's recent log records in memory, for ``GET /api/logs`` (``ccrouter.api.logs``): what
``ccrouter logs`` reads from a foreground ``ccrouter serve``, which has no log file.

``LogRing`` keeps the last records as the JSON lines structlog writes, redacted as they are
(``ccrouter.telemetry.logging`` feeds it from the end of its processor chain), each numbered from 1
in order, bounded both in count and in characters: the oldest go first. Adding one is a lock and a
deque append (the line is parsed only when read); ``read`` filters by request id and minimum level.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import orjson

from ccrouter.logfile import LEVELS

__all__ = ["MAX_RECORDS", "LogPage", "LogRing"]

MAX_RECORDS = 2_000
MAX_CHARS = 2 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class LogPage:
    """Records ``(seq, record)`` oldest first, and the seq to ask from next time."""

    records: list[tuple[int, dict[str, Any]]]
    next_seq: int


class LogRing:
    """A bounded, thread-safe ring of JSON log lines (handlers of the root logger run in any thread)."""

    def __init__(self, *, max_records: int = MAX_RECORDS, max_chars: int = MAX_CHARS) -> None:
        self._max_records = max_records
        self._max_chars = max_chars
        self._lines: deque[tuple[int, str]] = deque()
        self._chars = 0
        self._next = 1
        self._lock = threading.Lock()

    def add(self, line: str) -> None:
        with self._lock:
            self._lines.append((self._next, line))
            self._next += 1
            self._chars += len(line)
            while len(self._lines) > self._max_records or (
                self._chars > self._max_chars and len(self._lines) > 1
            ):
                self._chars -= len(self._lines.popleft()[1])

    def __len__(self) -> int:
        return len(self._lines)

    def read(
        self,
        *,
        since: int | None = None,
        limit: int = 100,
        request_id: str | None = None,
        level: str | None = None,
    ) -> LogPage:
        """Matching records: from seq ``since`` on, the first ``limit``; without ``since``, the last
        ``limit``. ``next_seq``: past the last record looked at (poll with it as ``since``)."""
        with self._lock:
            lines = list(self._lines)
            newest = self._next
        if since is not None and since > newest:  # a seq of an earlier process: from the end on
            since = newest
        minimum = LEVELS.index(level) if level is not None else 0
        found: list[tuple[int, dict[str, Any]]] = []
        if since is None:
            for seq, line in reversed(lines):
                if len(found) >= limit:
                    break
                record = _match(line, request_id, minimum)
                if record is not None:
                    found.append((seq, record))
            return LogPage(found[::-1], newest)
        next_seq = max(since, lines[0][0] if lines else newest)
        for seq, line in lines:
            if seq < since:
                continue
            if len(found) >= limit:
                break
            next_seq = seq + 1
            record = _match(line, request_id, minimum)
            if record is not None:
                found.append((seq, record))
        else:
            next_seq = max(since, newest)
        return LogPage(found, next_seq)


def _match(line: str, request_id: str | None, minimum: int) -> dict[str, Any] | None:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict):
        return None
    if request_id is not None and record.get("request_id") != request_id:
        return None
    if minimum:
        level = record.get("level")
        own = level.lower() if isinstance(level, str) else ""
        if own not in LEVELS or LEVELS.index(own) < minimum:
            return None
    return record
