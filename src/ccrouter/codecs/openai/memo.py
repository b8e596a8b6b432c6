"""What ``chat.encode_request`` made of the system prompt, history messages and tools of
earlier requests, kept serialised.

Claude Code resends the same system prompt, tool definitions and history every turn, and the decode
cache (``ccrouter.codecs.body``) hands back the very same canonical ``Message`` and ``Tool`` objects
for them (``MessagesRequest.shared_parts``). Their OpenAI translation is kept here by object
identity, as the bytes ``orjson.dumps`` gave for it (``orjson.Fragment``, which ``orjson.dumps``
copies as they are), so a request translates and serialises only what is new.

Why a hit gives the body the encoder would build: a message's translation (``chat._message``)
depends only on the message, the dialect, the calls still pending from the message before, and what
the request's ``ToolNames`` answers. The first three are the key; the answers are replayed: the
same ``to_wire_name``/``to_wire_id`` calls are made again, in order, on the request's ``ToolNames``
(``ToolNames.replay``), and the entry is used only if each answer is the recorded one (a name
rewritten to avoid a clash may differ with the names registered before it). The map then also ends
as without the memo; after a mismatch the message is translated, which makes the replayed calls
once more, answered the same and changing nothing. The same holds for the tools list. Canonical
objects are never changed in place (copy-on-write), and an entry holds its objects so their ids
cannot be reused while it lives. The system prompt is kept by value (``TextBlock`` equality: a few
string comparisons, each an identity check when the decode cache shared the block) and touches no
names: Claude Code's billing block before it differs every request.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from ccrouter.codecs.openai.dialect import JSON, Dialect, Pending
from ccrouter.codecs.openai.toolnames import NameCall, ToolNames, WireNames
from ccrouter.codecs.prompt import CleanTexts
from ccrouter.messages import Message, TextBlock, Tool

__all__ = ["EncodeMemo"]

TranslateMessage = Callable[[Message, Pending, WireNames, Dialect, list[JSON]], Pending]
TranslateTools = Callable[[list[Tool], WireNames, Dialect], list[JSON]]
TranslateSystem = Callable[[list[TextBlock], Dialect], JSON | None]
# What an entry weighs beyond its serialised size (the entry, its tuples and dicts), roughly.
_ENTRY_OVERHEAD = 512
_MAX_DIALECTS = 64
_MAX_TOOL_SETS = 16
# Conversations whose history is kept as one run (agents and subagents at once).
_MAX_HISTORIES = 32
# A few system prompts (Claude Code's main agent and its subagents), compared one by one.
_MAX_SYSTEMS = 4

# Entries are never changed once made. They are not frozen dataclasses because building one of those
# costs about 1 us (object.__setattr__ per field), once for every new message.


@dataclass(slots=True)
class _Translated:
    """A message's OpenAI messages, for one dialect and one set of pending calls."""

    message: Message
    dialect: Dialect
    pending: Pending
    calls: tuple[NameCall, ...]
    parts: tuple[orjson.Fragment, ...]
    after: Pending
    weight: int


@dataclass(slots=True)
class _History:
    """The translation of a conversation's messages from its first, as one run."""

    messages: list[Message]
    dialect: Dialect
    calls: tuple[NameCall, ...]
    parts: tuple[orjson.Fragment, ...]
    after: Pending
    weight: int


@dataclass(slots=True)
class _ToolSet:
    tools: tuple[Tool, ...]
    dialect: Dialect
    calls: tuple[NameCall, ...]
    part: orjson.Fragment | None
    weight: int


@dataclass(slots=True)
class _System:
    blocks: list[TextBlock]
    dialect: Dialect
    part: orjson.Fragment | None
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
    """Serialised system prompts, history messages and tool lists, bounded in entries and in weight
    (serialised size plus a per-entry overhead): a quarter of ``max_bytes`` for tool lists, a quarter
    for system prompts, the rest for messages in two generations that approximate LRU, as in
    ``DecodeCache``. One per adapter.

    ``hits`` and ``misses`` count message and tool-list lookups, for tests and metrics.
    """

    def __init__(self, *, max_entries: int = 4096, max_bytes: int = 8 * 1024 * 1024) -> None:
        self._half_entries = max(1, (max_entries - _MAX_TOOL_SETS - _MAX_SYSTEMS) // 2)
        self._half_bytes = max(1, max_bytes // 4)
        # A message heavier than this is translated every time rather than kept (one huge tool
        # result must not hold a quarter of the budget after its request).
        self._entry_bytes_max = max(1, max_bytes // 16)
        self._tool_bytes_max = max(1, max_bytes // 4)
        self._system_bytes_max = max(1, max_bytes // (4 * _MAX_SYSTEMS))
        self._young: dict[tuple[int, int], _Translated] = {}
        self._old: dict[tuple[int, int], _Translated] = {}
        self._young_bytes = 0
        self._old_bytes = 0
        self._tool_sets: dict[tuple[int, ...], _ToolSet] = {}
        self._tool_bytes = 0
        self._systems: list[_System] = []
        self._histories: dict[int, _History] = {}
        self._history_bytes = 0
        self._dialects: dict[Dialect, Dialect] = {}
        # System prompt texts already found free of Claude Code's billing line (``codecs.billing``).
        self.clean = CleanTexts()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        """Entries held (messages, tool lists and system prompts)."""
        return len(self._young) + len(self._old) + len(self._tool_sets) + len(self._systems)

    @property
    def weight(self) -> int:
        """What the held entries weigh."""
        systems = sum(entry.weight for entry in self._systems)
        return self._young_bytes + self._old_bytes + self._tool_bytes + systems

    def intern(self, dialect: Dialect) -> Dialect:
        """The one ``Dialect`` object equal to ``dialect``: entries are keyed by its identity."""
        known = self._dialects.get(dialect)
        if known is None:
            if len(self._dialects) >= _MAX_DIALECTS:
                self._dialects = {}
            known = self._dialects[dialect] = dialect
        return known

    def system(
        self, blocks: list[TextBlock], dialect: Dialect, translate: TranslateSystem
    ) -> orjson.Fragment | None:
        """``translate(blocks, dialect)`` serialised, from the memo when possible."""
        for entry in self._systems:
            if entry.dialect is dialect and entry.blocks == blocks:
                return entry.part
        message = translate(blocks, dialect)
        encoded = b"" if message is None else orjson.dumps(message)
        part = None if message is None else orjson.Fragment(encoded)
        weight = len(encoded) + _ENTRY_OVERHEAD
        if weight <= self._system_bytes_max:
            self._systems = [_System(list(blocks), dialect, part, weight), *self._systems[: _MAX_SYSTEMS - 1]]
        return part

    def message(
        self,
        message: Message,
        pending: Pending,
        names: ToolNames,
        dialect: Dialect,
        translate: TranslateMessage,
    ) -> tuple[tuple[orjson.Fragment, ...], Pending, tuple[NameCall, ...], int]:
        """What ``translate(message, pending, names, dialect, out)`` appends to ``out``, serialised,
        what it returns, the name calls it made, and what that weighs; from the memo when possible."""
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
            return entry.parts, entry.after, entry.calls, entry.weight
        self.misses += 1
        recorder = _Recorder(names)
        items: list[JSON] = []
        after = translate(message, pending, recorder, dialect, items)
        encoded = [orjson.dumps(item) for item in items]
        parts = tuple(map(orjson.Fragment, encoded))
        calls = tuple(recorder.calls)
        weight = sum(map(len, encoded)) + _ENTRY_OVERHEAD
        if weight <= self._entry_bytes_max:
            self._keep(key, _Translated(message, dialect, pending, calls, parts, after, weight))
        return parts, after, calls, weight

    def history(
        self, messages: list[Message], names: ToolNames, dialect: Dialect
    ) -> tuple[int, tuple[orjson.Fragment, ...], tuple[NameCall, ...], Pending, int]:
        """The remembered run that starts ``messages`` (a conversation's history as of an earlier
        turn), its calls replayed: (how many messages it covers, their parts, their name calls, the
        calls left pending after them, what it weighs); (0, (), (), (), 0) when there is none."""
        run = self._histories.get(id(messages[0])) if messages else None
        if (
            run is None
            or run.dialect is not dialect
            or len(run.messages) > len(messages)
            or not all(map(operator.is_, run.messages, messages))
            or not names.replay(run.calls)
        ):
            return 0, (), (), (), 0
        self.hits += 1
        return len(run.messages), run.parts, run.calls, run.after, run.weight

    def remember_history(
        self,
        messages: list[Message],
        dialect: Dialect,
        parts: tuple[orjson.Fragment, ...],
        calls: tuple[NameCall, ...],
        after: Pending,
        weight: int,
    ) -> None:
        """Keep the translation of ``messages`` from the start of a conversation whole: next turn
        its history starts with these very messages (one run per first message). ``weight``: what
        its messages' entries weigh."""
        old = self._histories.pop(id(messages[0]), None)
        if old is not None:
            self._history_bytes -= old.weight
        if weight > self._half_bytes:
            return
        if len(self._histories) >= _MAX_HISTORIES or self._history_bytes + weight > self._half_bytes:
            self._histories = {}
            self._history_bytes = 0
        self._histories[id(messages[0])] = _History(list(messages), dialect, calls, parts, after, weight)
        self._history_bytes += weight

    def tools(
        self, tools: list[Tool], names: ToolNames, dialect: Dialect, translate: TranslateTools
    ) -> orjson.Fragment | None:
        """The list ``translate(tools, names, dialect)`` serialised, or None when it is empty; from the
        memo when possible."""
        key = (id(dialect), *map(id, tools))
        entry = self._tool_sets.get(key)
        # Ids in the key are those of live objects (the entry holds them): equal keys, same objects.
        if entry is not None and entry.dialect is dialect and names.replay(entry.calls):
            self.hits += 1
            return entry.part
        self.misses += 1
        recorder = _Recorder(names)
        items = translate(tools, recorder, dialect)
        encoded = orjson.dumps(items) if items else b""
        part = orjson.Fragment(encoded) if items else None
        weight = len(encoded) + _ENTRY_OVERHEAD
        if weight <= self._tool_bytes_max:
            if len(self._tool_sets) >= _MAX_TOOL_SETS or self._tool_bytes + weight > self._tool_bytes_max:
                self._tool_sets = {}
                self._tool_bytes = 0
            self._tool_sets[key] = _ToolSet(tuple(tools), dialect, tuple(recorder.calls), part, weight)
            self._tool_bytes += weight
        return part

    def _keep(self, key: tuple[int, int], entry: _Translated) -> None:
        if len(self._young) >= self._half_entries or self._young_bytes + entry.weight > self._half_bytes:
            self._old, self._old_bytes = self._young, self._young_bytes
            self._young, self._young_bytes = {}, 0
        self._young[key] = entry
        self._young_bytes += entry.weight
