"""Splitting a body whose end was seen before: an agent's request repeats its last fields byte for byte.

Claude Code puts the ~50 KB tool definitions after the messages, and what follows them (metadata,
thinking, output settings) stays the same for a whole session. Every turn changes only the messages
and what comes before them. ``TailMemory`` remembers, for a few recent bodies, the bytes from the
value of the first field after ``messages`` to the end (the *tail*) together with those fields' raw
values. A body that ends with a remembered tail is split by scanning only the bytes before it: the
head, closed as ``head + b"null}"``, is split and validated, and the tail's fields are taken as
recorded.

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
same as always.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import msgspec
import orjson

from ccrouter.errors import RequestError

__all__ = ["TailMemory"]

Split = Callable[[bytes], dict[str, msgspec.Raw]]

# Tails kept (several agents and subagents of one user at once), most recently used first.
_MAX_TAILS = 8
# Shorter tails are not worth remembering: the scan they save costs less than the checks.
_MIN_TAIL = 4096
# The last bytes compared first: a different session's tail differs there (its metadata).
_PROBE = 64


@dataclass(frozen=True, slots=True)
class _Tail:
    key: str  # the tail's first field
    data: bytes  # that field's value, the fields after it, and the closing brace
    fields: dict[str, msgspec.Raw]  # the tail's fields in order, from ``key``


class TailMemory:
    """The tails of recent bodies (see the module docstring); one per body format."""

    def __init__(self) -> None:
        self._tails: list[_Tail] = []
        self.hits = 0

    def split(self, body: bytes, after: str, split: Split) -> dict[str, msgspec.Raw]:
        """``split(body)``, scanning only what precedes a remembered tail when the body ends with
        one; otherwise the whole body, whose tail (the fields after ``after``) is then remembered."""
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
        recorded = _tail_of(body, fields, after)
        if recorded is not None:
            self._tails.insert(0, recorded)
            del self._tails[_MAX_TAILS:]
        return fields


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


def _tail_of(body: bytes, fields: dict[str, msgspec.Raw], after: str) -> _Tail | None:
    """The tail of ``body`` after the field ``after``, when it is laid out compactly (checked)."""
    keys = list(fields)
    try:
        start = keys.index(after) + 1
    except ValueError:
        return None
    if start >= len(keys):
        return None
    names = [orjson.dumps(key) for key in keys[start:]]
    values = [memoryview(fields[key]) for key in keys[start:]]
    size = 1 + sum(len(value) for value in values) + sum(len(name) + 2 for name in names[1:])
    if size < _MIN_TAIL or size >= len(body):
        return None
    view = memoryview(body)
    position = len(body) - size
    for index, value in enumerate(values):
        if index:
            separator = b"," + names[index] + b":"
            if view[position : position + len(separator)] != separator:
                return None
            position += len(separator)
        if view[position : position + len(value)] != value:
            return None
        position += len(value)
    if body[position:] != b"}":
        return None
    return _Tail(keys[start], body[len(body) - size :], {key: fields[key] for key in keys[start:]})
