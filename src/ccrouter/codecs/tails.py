"""Splitting a body whose end was seen before: an agent's request repeats its last fields byte for byte.

Claude Code writes ``model, messages, system, tools, metadata, max_tokens, thinking, ...``: the
messages change every turn, and so does the system prompt (its first block is a per-request billing
line), but the ~50-70 KB of tool definitions and the settings after them stay the same for a whole
session. ``TailMemory`` remembers, for a few recent sessions, the bytes from the value of the first
field after the last of the fields that change (the *tail*) together with those fields' raw values.
A body that ends with a remembered tail is split by scanning only the bytes before it: the head,
closed as ``head + b"null}"``, is split and validated, and the tail's fields are taken as recorded.

Why that equals splitting the whole body:
- a tail is recorded only after checking, byte by byte, that it is exactly its fields' raw values
  joined by compact separators (``,"key":``) and a closing ``}``, which is what a JSON serialiser
  without whitespace writes; other bodies are never recorded and always split whole;
- the head, closed with ``null}``, must split as a JSON object whose last member is the tail's first
  field with the value ``null``. So the head is a valid start of the top-level object that ends
  where that member's value starts, and the tail, valid there before, is valid there now;
- a field repeated across head and tail keeps its first place and the last value, as in a dict
  built from the whole body.
Anything else (no tail matches, the head does not close) splits the whole body, so errors read the
same as always. A tail is recorded the second time it is seen (its hash is noted the first time), so
clients whose tails never repeat pay a hash per request, not a copy.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import msgspec
import orjson
from xxhash import xxh3_64_intdigest

from ccrouter.errors import RequestError

__all__ = ["TailMemory"]

Split = Callable[[bytes], dict[str, msgspec.Raw]]

# Tails kept (several agents and subagents of one user at once), most recently used first.
_MAX_TAILS = 8
# Shorter tails are not worth remembering: the scan they save costs less than the checks.
_MIN_TAIL = 4096
# The last bytes compared first: a different session's tail differs there (its metadata).
_PROBE = 64
# Tails seen once, waiting to be seen again.
_MAX_SEEN = 64


@dataclass(frozen=True, slots=True)
class _Tail:
    key: str  # the tail's first field
    data: bytes  # that field's value, the fields after it, and the closing brace
    fields: dict[str, msgspec.Raw]  # the tail's fields in order, from ``key``


class TailMemory:
    """The tails of recent bodies (see the module docstring); one per body format."""

    def __init__(self) -> None:
        self._tails: list[_Tail] = []
        # Tails seen once, by (length, hash) of their bytes: recorded if seen again (True), or known
        # not to be laid out compactly (False).
        self._seen: dict[tuple[int, int], bool] = {}
        self.hits = 0

    def split(self, body: bytes, after: Collection[str], split: Split) -> dict[str, msgspec.Raw]:
        """``split(body)``, scanning only what precedes a remembered tail when the body ends with
        one; otherwise the whole body, whose tail (the fields after the last of ``after``) is noted,
        and remembered once it recurs."""
        end = body[-_PROBE:]
        for index, tail in enumerate(self._tails):
            data = tail.data
            if len(body) > len(data) and data.endswith(end) and body.endswith(data):
                fields = _split_head(body[: len(body) - len(data)], tail, split)
                if fields is not None:
                    if index:
                        self._tails.insert(0, self._tails.pop(index))
                    self.hits += 1
                    return fields
        fields = split(body)
        self._note(body, fields, after)
        return fields

    def _note(self, body: bytes, fields: dict[str, msgspec.Raw], after: Collection[str]) -> None:
        layout = _layout(body, fields, after)
        if layout is None:
            return
        start, size = layout
        key = (size, xxh3_64_intdigest(memoryview(body)[len(body) - size :]))
        seen = self._seen.get(key)
        if seen is None:
            if len(self._seen) >= _MAX_SEEN:
                self._seen.clear()
            self._seen[key] = True
            return
        if not seen:
            return
        tail = _checked_tail(body, fields, start, size)
        if tail is None:
            self._seen[key] = False
            return
        del self._seen[key]
        self._tails.insert(0, tail)
        del self._tails[_MAX_TAILS:]


def _split_head(head: bytes, tail: _Tail, split: Split) -> dict[str, msgspec.Raw] | None:
    try:
        fields = split(head + b"null}")
    except RequestError:  # the caller splits the whole body, and reports as usual
        return None
    if not fields or next(reversed(fields)) != tail.key or bytes(fields[tail.key]) != b"null":
        return None
    del fields[tail.key]
    fields.update(tail.fields)
    return fields


def _layout(body: bytes, fields: dict[str, msgspec.Raw], after: Collection[str]) -> tuple[int, int] | None:
    """(index of the tail's first field, the tail's size in bytes if laid out compactly), or None
    when there is no tail worth remembering."""
    keys = list(fields)
    start = 1 + max((i for i, key in enumerate(keys) if key in after), default=-1)
    if start == 0 or start >= len(keys):
        return None
    size = 1 + sum(len(fields[key]) for key in keys[start:])
    size += sum(len(orjson.dumps(key)) + 2 for key in keys[start + 1 :])
    if size < _MIN_TAIL or size >= len(body):
        return None
    return start, size


def _checked_tail(body: bytes, fields: dict[str, msgspec.Raw], start: int, size: int) -> _Tail | None:
    """The tail of ``body`` from field ``start``, when it is exactly the fields' raw values joined
    compactly (checked byte by byte), else None."""
    keys = list(fields)[start:]
    view = memoryview(body)
    position = len(body) - size
    for index, key in enumerate(keys):
        if index:
            separator = b"," + orjson.dumps(key) + b":"
            if view[position : position + len(separator)] != separator:
                return None
            position += len(separator)
        value = memoryview(fields[key])
        if view[position : position + len(value)] != value:
            return None
        position += len(value)
    if body[position:] != b"}":
        return None
    # Copies: a ``Raw`` split from the body holds the whole body, which must not outlive its request.
    return _Tail(keys[0], body[len(body) - size :], {key: fields[key].copy() for key in keys})
