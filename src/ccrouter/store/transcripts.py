"""Claude Code's own record of usage: its local transcripts, ``~/.claude/projects/**/*.jsonl``.

Each line is one event; ``type: "assistant"`` lines carry the API response in ``message``, with
``message.usage`` as the API reported it (Anthropic convention: ``input_tokens`` excludes cached input).
A streamed response is written as several lines, one per content block, sharing ``message.id`` and
``requestId`` with the same usage, so lines are de-duplicated on that pair (the last one wins).
Lines Claude Code made up itself (model ``<synthetic>``) and unreadable lines are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from ccrouter.messages import Usage

__all__ = ["TranscriptUsage", "default_transcripts_dir", "read_transcripts", "session_totals"]


@dataclass(frozen=True, slots=True)
class TranscriptUsage:
    session_id: str
    model: str
    ts: float
    usage: Usage


def default_transcripts_dir() -> Path:
    return Path.home() / ".claude" / "projects"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _entry(line: bytes) -> tuple[tuple[str, str], TranscriptUsage] | None:
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict) or event.get("type") != "assistant":
        return None
    message = event.get("message")
    if not isinstance(message, dict) or not isinstance(message.get("usage"), dict):
        return None
    model = str(message.get("model") or "")
    if not model or model.startswith("<"):
        return None
    raw = message["usage"]
    usage = Usage(
        input_tokens=_int(raw.get("input_tokens")),
        output_tokens=_int(raw.get("output_tokens")),
        cache_read_input_tokens=_int(raw.get("cache_read_input_tokens")),
        cache_creation_input_tokens=_int(raw.get("cache_creation_input_tokens")),
    )
    try:
        ts = datetime.fromisoformat(str(event.get("timestamp", "")).replace("Z", "+00:00")).timestamp()
    except ValueError:
        ts = 0.0
    key = (str(message.get("id") or event.get("uuid") or ""), str(event.get("requestId") or ""))
    return key, TranscriptUsage(str(event.get("sessionId") or ""), model, ts, usage)


def read_transcripts(root: Path) -> list[TranscriptUsage]:
    """Every assistant message's usage under ``root`` (a folder searched recursively, or one file)."""
    files: Iterable[Path] = [root] if root.is_file() else sorted(root.rglob("*.jsonl"))
    found: dict[tuple[str, str], TranscriptUsage] = {}
    for path in files:
        with path.open("rb") as handle:
            for line in handle:
                entry = _entry(line)
                if entry is not None:
                    found[entry[0]] = entry[1]
    return sorted(found.values(), key=lambda item: item.ts)


@dataclass(slots=True)
class SessionTotal:
    session_id: str
    models: set[str]
    messages: int
    usage: Usage
    first_ts: float


def session_totals(items: Iterable[TranscriptUsage]) -> Iterator[SessionTotal]:
    """Per-session sums, in order of first use."""
    totals: dict[str, SessionTotal] = {}
    for item in items:
        total = totals.get(item.session_id)
        if total is None:
            total = totals[item.session_id] = SessionTotal(item.session_id, set(), 0, Usage(), item.ts)
        total.models.add(item.model)
        total.messages += 1
        u, add = total.usage, item.usage
        u.input_tokens += add.input_tokens
        u.output_tokens += add.output_tokens
        u.cache_read_input_tokens += add.cache_read_input_tokens
        u.cache_creation_input_tokens += add.cache_creation_input_tokens
    yield from totals.values()
