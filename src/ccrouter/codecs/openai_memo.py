"""What ``openai_chat.encode_request`` made of the history messages and tools of earlier requests.

Claude Code resends the same tool definitions and history every turn, and the decode cache
(``ccrouter.codecs.body``) hands back the very same canonical ``Message`` and ``Tool`` objects for
them (``MessagesRequest.shared_parts``). Their OpenAI translation is kept here by object identity,
so a request translates only what is new.

Why a hit gives the body the encoder would build: a message's translation (``openai_chat._message``)
depends only on the message, the dialect, the calls still pending from the message before, and what
the request's ``ToolNames`` answers. The first three are the key; the answers are replayed: the
same ``to_wire_name``/``to_wire_id`` calls are made again, in order, on the request's ``ToolNames``
(``ToolNames.replay``), and the entry is used only if each answer is the recorded one (a name
rewritten to avoid a clash may differ with the names registered before it). The map then also ends
as without the memo; after a mismatch the message is translated, which makes the replayed calls
once more, answered the same and changing nothing. The same holds for the tools list. Canonical
objects are never changed in place (copy-on-write), and an entry holds its objects so their ids
cannot be reused while it lives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson

from ccrouter.codecs.openai_chat import JSON, Dialect, Pending
from ccrouter.codecs.toolnames import NameCall, ToolNames, WireNames
from ccrouter.messages import Message, Tool

__all__ = ["EncodeMemo"]

TranslateMessage = Callable[[Message, Pending, WireNames, Dialect, list[JSON]], Pending]
TranslateTools = Callable[[list[Tool], WireNames, Dialect], list[JSON]]
# What an entry weighs beyond its serialised size (the entry, its tuples and dicts), roughly.
_ENTRY_OVERHEAD = 512
_MAX_DIALECTS = 64
_MAX_TOOL_SETS = 16


@dataclass(frozen=True, slots=True)
class _Translated:
    """A message's OpenAI messages, for one dialect and one set of pending calls."""

    message: Message
    dialect: Dialect
    pending: Pending
    calls: tuple[NameCall, ...]
    items: tuple[JSON, ...]
    after: Pending
    weight: int


@dataclass(frozen=True, slots=True)
class _ToolSet:
    tools: tuple[Tool, ...]
    dialect: Dialect
    calls: tuple[NameCall, ...]
    items: tuple[JSON, ...]
    weight: int


class _Recorder:
    """A ``WireNames`` that passes calls to the request's ``ToolNames`` and records them."""

    __slots__ = ("calls", "names")

    def __init__(self, names: ToolNames) -> None:
        self.names = names
        self.calls: list[NameCall] = []

    def to_wire_name(self, name: str) -> str:
        wire = self.names.to_wire_name(name)
        self.calls.append((True, name, wire))
        return wire

    def to_wire_id(self, call_id: str) -> str:
        wire = self.names.to_wire_id(call_id)
        self.calls.append((False, call_id, wire))
        return wire


class EncodeMemo:
    """Translated history messages and tool lists, by identity, bounded in entries and in weight
    (serialised size plus a per-entry overhead): a quarter of ``max_bytes`` for tool lists, the rest
    for messages in two generations that approximate LRU, as in ``DecodeCache``. One per adapter.

    ``hits`` and ``misses`` count message and tool-list lookups, for tests and metrics.
    """

    def __init__(self, *, max_entries: int = 4096, max_bytes: int = 8 * 1024 * 1024) -> None:
        self._half_entries = max(1, (max_entries - _MAX_TOOL_SETS) // 2)
        self._half_bytes = max(1, max_bytes * 3 // 8)
        self._tool_bytes_max = max(1, max_bytes // 4)
        self._young: dict[tuple[int, int], _Translated] = {}
        self._old: dict[tuple[int, int], _Translated] = {}
        self._young_bytes = 0
        self._old_bytes = 0
        self._tool_sets: dict[tuple[int, ...], _ToolSet] = {}
        self._tool_bytes = 0
        self._dialects: dict[Dialect, Dialect] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        """Entries held (messages and tool lists)."""
        return len(self._young) + len(self._old) + len(self._tool_sets)

    @property
    def weight(self) -> int:
        """What the held entries weigh."""
        return self._young_bytes + self._old_bytes + self._tool_bytes

    def intern(self, dialect: Dialect) -> Dialect:
        """The one ``Dialect`` object equal to ``dialect``: entries are keyed by its identity."""
        known = self._dialects.get(dialect)
        if known is None:
            if len(self._dialects) >= _MAX_DIALECTS:
                self._dialects = {}
            known = self._dialects[dialect] = dialect
        return known

    def message(
        self,
        message: Message,
        pending: Pending,
        names: ToolNames,
        dialect: Dialect,
        translate: TranslateMessage,
        out: list[JSON],
    ) -> Pending:
        """``translate(message, pending, names, dialect, out)``, from the memo when possible."""
        key = (id(message), id(dialect))
        entry = self._young.get(key)
        if entry is None:
            entry = self._old.get(key)
            if entry is not None:
                self._keep(key, entry)
        if (
            entry is not None
            and entry.message is message
            and entry.dialect is dialect
            and entry.pending == pending
            and names.replay(entry.calls)
        ):
            self.hits += 1
            out.extend(entry.items)
            return entry.after
        self.misses += 1
        recorder = _Recorder(names)
        items: list[JSON] = []
        after = translate(message, pending, recorder, dialect, items)
        weight = len(orjson.dumps(items)) + _ENTRY_OVERHEAD
        if weight <= self._half_bytes:
            self._keep(
                key,
                _Translated(message, dialect, pending, tuple(recorder.calls), tuple(items), after, weight),
            )
        out.extend(items)
        return after

    def tools(
        self, tools: list[Tool], names: ToolNames, dialect: Dialect, translate: TranslateTools
    ) -> list[JSON]:
        """``translate(tools, names, dialect)``, from the memo when possible (a new list each time)."""
        key = (id(dialect), *map(id, tools))
        entry = self._tool_sets.get(key)
        # Ids in the key are those of live objects (the entry holds them): equal keys, same objects.
        if entry is not None and entry.dialect is dialect and names.replay(entry.calls):
            self.hits += 1
            return list(entry.items)
        self.misses += 1
        recorder = _Recorder(names)
        items = translate(tools, recorder, dialect)
        weight = len(orjson.dumps(items)) + _ENTRY_OVERHEAD
        if weight <= self._tool_bytes_max:
            if len(self._tool_sets) >= _MAX_TOOL_SETS or self._tool_bytes + weight > self._tool_bytes_max:
                self._tool_sets = {}
                self._tool_bytes = 0
            self._tool_sets[key] = _ToolSet(
                tuple(tools), dialect, tuple(recorder.calls), tuple(items), weight
            )
            self._tool_bytes += weight
        return items

    def _keep(self, key: tuple[int, int], entry: _Translated) -> None:
        if len(self._young) >= self._half_entries or self._young_bytes + entry.weight > self._half_bytes:
            self._old, self._old_bytes = self._young, self._young_bytes
            self._young, self._young_bytes = {}, 0
        self._young[key] = entry
        self._young_bytes += entry.weight
