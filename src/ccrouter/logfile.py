"""Reading the gateway's log file back: the last lines (read from the end, never the whole file), a
follower that survives rotation, filters by request id and minimum level, and one readable line
per record.

The file is what ``ccrouter start`` writes (``<config dir>/ccrouter.log``): structlog JSON lines,
and between them plain text (the start marker, the banner, a traceback). The lines were redacted
when written (``ccrouter.telemetry.logging``); nothing here adds a value that was not in them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

__all__ = ["LEVELS", "Record", "follow", "matches", "parse", "render", "tail"]

LEVELS = ("debug", "info", "warning", "error", "critical")
_BLOCK = 64 * 1024
# A line longer than this is shown cut: one runaway line (a body logged at debug) stays readable.
MAX_LINE_CHARS = 64 * 1024
_VALUE_CHARS = 300
# Fields every record has, shown in their own places rather than as key=value.
_OWN = frozenset({"timestamp", "level", "event", "request_id", "logger", "exception"})
# Of the request line, the fields worth a glance, in this order (the rest: --json).
_REQUEST_FIELDS = (
    "status",
    "route",
    "scenario",
    "provider",
    "model",
    "duration_ms",
    "cost_usd",
    "error_type",
)
_COLOURS = {"debug": "dim", "info": "green", "warning": "yellow", "error": "red", "critical": "bold red"}


@dataclass(frozen=True)
class Record:
    """One line of the file: ``data`` for a JSON record, None for plain text."""

    text: str
    data: dict[str, Any] | None

    @property
    def level(self) -> str | None:
        level = self.data.get("level") if self.data is not None else None
        return level.lower() if isinstance(level, str) else None


def parse(line: str) -> Record:
    text = line.rstrip("\r\n")[:MAX_LINE_CHARS]
    if text.startswith("{"):
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            return Record(text, data)
    return Record(text, None)


def matches(record: Record, *, request_id: str | None = None, level: str | None = None) -> bool:
    """Whether ``record`` passes the filters; plain text passes only when there is none."""
    if request_id is None and level is None:
        return True
    if record.data is None:
        return False
    if request_id is not None and record.data.get("request_id") != request_id:
        return False
    if level is not None:
        own = record.level
        return own in LEVELS and LEVELS.index(own) >= LEVELS.index(level)
    return True


def _reversed_lines(path: Path) -> Iterator[str]:
    """The file's lines, last first, read backwards in blocks (memory: one block and one line)."""
    with path.open("rb") as handle:
        position = handle.seek(0, os.SEEK_END)
        rest = b""
        while position > 0:
            step = min(_BLOCK, position)
            position -= step
            handle.seek(position)
            chunk = handle.read(step) + rest
            lines = chunk.split(b"\n")
            rest = lines[0]
            if len(rest) > MAX_LINE_CHARS * 4:  # no newline for a long way: keep only its end
                rest = rest[-MAX_LINE_CHARS * 4 :]
            for raw in reversed(lines[1:]):
                if raw:
                    yield raw.decode("utf-8", "replace")
        if rest:
            yield rest.decode("utf-8", "replace")


def tail(path: Path, count: int, accept: Callable[[Record], bool]) -> list[Record]:
    """The last ``count`` records of ``path`` that ``accept`` takes, oldest first."""
    found: list[Record] = []
    if count <= 0:
        return found
    for line in _reversed_lines(path):
        record = parse(line)
        if accept(record):
            found.append(record)
            if len(found) == count:
                break
    return found[::-1]


def follow(path: Path, *, poll_s: float = 0.25, stop: Callable[[], bool] = lambda: False) -> Iterator[Record]:
    """Records appended to ``path`` from now on, until ``stop()``. A file replaced (rotated by
    moving) or truncated (rotated by copying) is read again from its start."""
    handle = path.open("rb")
    handle.seek(0, os.SEEK_END)
    pending = b""
    try:
        while not stop():
            chunk = handle.read(_BLOCK)
            if chunk:
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()[-MAX_LINE_CHARS * 4 :]
                for raw in lines:
                    if raw:
                        yield parse(raw.decode("utf-8", "replace"))
                continue
            try:
                now = path.stat()
            except FileNotFoundError:  # between a rotation's move and the new file: wait for it
                time.sleep(poll_s)
                continue
            if now.st_ino != os.fstat(handle.fileno()).st_ino or now.st_size < handle.tell():
                handle.close()
                handle = path.open("rb")
                pending = b""
                continue
            time.sleep(poll_s)
    finally:
        handle.close()


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return text if len(text) <= _VALUE_CHARS else text[: _VALUE_CHARS - 1] + "…"


def _when(stamp: Any) -> str:
    # ISO 8601 in UTC as TimeStamper writes it: "2026-12-02T17:53:28.123456Z" -> "12-02 17:53:28.123".
    if not isinstance(stamp, str) or len(stamp) < 19:
        return str(stamp or "-")
    return f"{stamp[5:10]} {stamp[11:23].rstrip('Z')}"


def render(record: Record) -> str:
    """Rich markup for one record: time, level (coloured), event, request id, its key fields."""
    from rich.markup import escape

    if record.data is None:
        return f"[dim]{escape(record.text)}[/]"
    data = record.data
    level = record.level or "-"
    colour = _COLOURS.get(level, "white")
    parts = [
        f"[dim]{escape(_when(data.get('timestamp')))}[/]",
        f"[{colour}]{escape(level.upper()):<7}[/]",
        f"[bold]{escape(_short(data.get('event', '')))}[/]",
    ]
    if data.get("request_id"):
        parts.append(f"[cyan]{escape(str(data['request_id']))}[/]")
    if data.get("event") == "request":
        keys: list[str] = [key for key in _REQUEST_FIELDS if data.get(key) is not None]
    else:
        keys = [key for key in data if key not in _OWN and data[key] is not None]
    parts += [f"{escape(key)}={escape(_short(data[key]))}" for key in keys]
    line = " ".join(parts)
    exception = data.get("exception")
    if isinstance(exception, str) and exception:
        line += "\n" + f"[red]{escape(exception[:MAX_LINE_CHARS])}[/]"
    return line
