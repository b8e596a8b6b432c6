"""Request bodies as raw parts, and the cache of what earlier requests decoded from the same bytes.

Agents resend the whole conversation every turn: the same tool definitions (about half of a Claude
Code request) and the same history, plus one new exchange. A format's body decoder
(``anthropic.body``, ``openai.body``) splits the body at the top level and its messages list without
building them (msgspec's ``Raw``), and looks each message and the tools up here by a hash of their
bytes, so only what was not seen before is parsed and decoded. Cached values are shared between
requests, which is safe because every edit downstream is copy-on-write (``ccrouter.codecs.prompt``,
``ccrouter.routing.fit``, the providers' rules, the passthrough encoders).

Every part is validated here as it is parsed, for both wire formats: valid UTF-8, numbers a double
can hold, and at most ``MAX_DEPTH`` levels of arrays and objects (the encoders serialise what we
decoded again, and orjson refuses to write more than 254). A cached value was validated when it was
stored; each decoder (and the place of its parts in the body) has its own key space, so bytes that
decoded as one thing (an empty tools list) are never handed out as another (a message).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
import orjson
from xxhash import xxh3_128_intdigest

from ccrouter.codecs.tails import TailMemory
from ccrouter.errors import RequestError

__all__ = [
    "MAX_DEPTH",
    "DecodeCache",
    "decoded",
    "decoded_items",
    "parse",
    "split_body",
    "split_list",
    "split_object",
]

T = TypeVar("T")

# Levels of arrays and objects a body may nest, the body itself one (README, "Limits"). Real agents
# nest a few dozen at most (JSON Schemas in tool definitions); orjson writes at most 254.
MAX_DEPTH = 128

_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])
_LIST = msgspec.json.Decoder(list[msgspec.Raw])
# What a cached part costs for its raw bytes (parsed dicts plus canonical objects), roughly, and per
# entry whatever its size (the entry, its tuple, a message's smallest dict and objects).
_OBJECT_OVERHEAD = 3
_ENTRY_OVERHEAD = 512


class DecodeCache:
    """Decoded parts by a 128-bit hash of their raw JSON, bounded by size. (A collision would hand a
    request someone else's message, so the hash is wide enough never to.) One cache per body format:
    the same bytes decode to different things in different formats; within one, each decoder hashes
    with its own seed (``seed``), so its entries are its own.

    Two generations approximate LRU: hits and new entries go to the young one; when it holds half
    the budget it becomes the old one and the previous old one is dropped. A part larger than
    ``max_part_bytes`` is decoded but not kept: one huge request must not hold the budget's worth
    of memory after it ended, nor push every agent's history out.
    """

    def __init__(self, *, max_bytes: int = 16 * 1024 * 1024, max_part_bytes: int | None = None) -> None:
        self._half = max(1, max_bytes // 2)
        self.max_part_bytes = max_bytes // 16 if max_part_bytes is None else max_part_bytes
        self._young: dict[int, Any] = {}
        self._old: dict[int, Any] = {}
        self._young_bytes = 0
        self._seeds: dict[tuple[Callable[[Any, int], Any], int], int] = {}
        self.hits = 0
        self.misses = 0
        # What follows the messages, as the last bodies ended (``split_body``).
        self.tails = TailMemory()

    def seed(self, decode: Callable[[Any, int], Any], depth: int) -> int:
        """The hash seed of ``decode``'s entries for parts ``depth`` levels into the body."""
        key = (decode, depth)
        seed = self._seeds.get(key)
        if seed is None:
            seed = self._seeds[key] = len(self._seeds) + 1
        return seed

    def get(self, key: int, size: int) -> Any:
        value = self._young.get(key)
        if value is None:
            value = self._old.get(key)
            if value is not None:
                self.put(key, value, size)
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    def put(self, key: int, value: Any, size: int) -> None:
        if size > self.max_part_bytes:
            return
        cost = size * _OBJECT_OVERHEAD + _ENTRY_OVERHEAD
        if self._young_bytes + cost > self._half:
            self._old = self._young
            self._young = {}
            self._young_bytes = 0
        self._young[key] = value
        self._young_bytes += cost


# The fields of a request body that change every turn (Claude Code's system prompt starts with a
# per-request billing line); what follows the last of them is an agent's stable tail.
_CHANGING = frozenset({"messages", "system"})


def split_body(body: bytes, cache: DecodeCache | None) -> dict[str, msgspec.Raw]:
    """``split_object``, scanning only the bytes before the fields after the messages and system
    prompt when an earlier body ended with the same bytes (``ccrouter.codecs.tails``)."""
    if cache is None:
        return split_object(body)
    return cache.tails.split(body, _CHANGING, split_object)


def split_object(body: bytes) -> dict[str, msgspec.Raw]:
    """The body's top-level members, each as its raw JSON; the whole body is validated."""
    if not body:
        raise RequestError("request body is empty: expected a JSON object")
    try:
        return _OBJECT.decode(body)
    except msgspec.ValidationError:
        raise RequestError(f"request body must be a JSON object, got {_json_type(body)}") from None
    except msgspec.DecodeError as exc:
        raise RequestError(f"request body is not valid JSON: {exc}") from None
    except RecursionError:  # msgspec skips a member's value recursively, up to Python's limit
        raise _too_deep() from None


def split_list(value: msgspec.Raw) -> list[msgspec.Raw] | None:
    """The items of a raw JSON array, or None when it is not an array."""
    try:
        return _LIST.decode(value)
    except msgspec.ValidationError:
        return None
    except RecursionError:
        raise _too_deep() from None


def parse(value: msgspec.Raw | memoryview, depth: int = 1) -> Any:
    """The JSON value of a part ``depth`` levels into the body (a top-level member: 1), validated:
    a ``RequestError`` for what the split let through (invalid UTF-8 inside a string, a number
    beyond a double) and for nesting past ``MAX_DEPTH``."""
    try:
        item = orjson.loads(value if type(value) is memoryview else memoryview(value))
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"request body is not valid JSON: {exc.msg}") from None
    room = MAX_DEPTH - depth
    # Each level takes two bytes (its brackets): a part of at most 2 * room bytes cannot nest past
    # room, and most parts parsed per request are that small (system blocks, a short new turn).
    nested = type(item) is dict or type(item) is list
    if nested and len(value) > 2 * room and not _within(item, room, value):
        raise _too_deep()
    return item


def decoded(
    cache: DecodeCache | None,
    value: msgspec.Raw,
    decode: Callable[[Any, int], T],
    index: int = 0,
    *,
    depth: int = 1,
) -> tuple[Any, T]:
    """(the parsed JSON, ``decode(parsed, index)``) for ``value`` (a part ``depth`` levels into the
    body), from ``cache`` when these bytes were seen by this decoder. ``index`` (the item's place,
    for error messages) is passed through so that a hit builds nothing. A ``decode`` that raises
    caches nothing."""
    view = memoryview(value)
    if cache is None:
        item = parse(view, depth)
        return item, decode(item, index)
    key = xxh3_128_intdigest(view, cache.seed(decode, depth))
    hit = cache.get(key, len(view))
    if hit is None:
        item = parse(view, depth)
        hit = (item, decode(item, index))
        cache.put(key, hit, len(view))
    return hit  # type: ignore[no-any-return]


def decoded_items(
    cache: DecodeCache | None,
    parts: list[msgspec.Raw],
    decode: Callable[[Any, int], T],
    *,
    cache_last: bool = False,
    min_size: int = 0,
) -> tuple[list[Any], list[T]]:
    """``decoded`` for every item of a split top-level list, in one pass (it runs for every message
    of every request): the parsed items and their decoded values. The last item is cached only with
    ``cache_last``: in a messages list it is the new one (a turn's new message, which may carry a
    moving cache marker), and next turn it comes back as other bytes. Items under ``min_size``
    bytes are decoded, not cached (cheap to decode, and in a system prompt the one that changes on
    every request)."""
    parsed: list[Any] = []
    values: list[T] = []
    last = len(parts) - 1 if not cache_last else -1
    if cache is None:
        for index, part in enumerate(parts):
            item = parse(memoryview(part), _ITEM_DEPTH)
            parsed.append(item)
            values.append(decode(item, index))
        return parsed, values
    young, old = cache._young, cache._old
    seed = cache.seed(decode, _ITEM_DEPTH)
    for index, part in enumerate(parts):
        view = memoryview(part)
        if index == last or len(view) < min_size:
            item = parse(view, _ITEM_DEPTH)
            parsed.append(item)
            values.append(decode(item, index))
            continue
        key = xxh3_128_intdigest(view, seed)
        hit = young.get(key)
        if hit is None:
            hit = old.get(key)
            if hit is None:
                cache.misses += 1
                item = parse(view, _ITEM_DEPTH)
                hit = (item, decode(item, index))
            else:
                cache.hits += 1
            cache.put(key, hit, len(view))
        else:
            cache.hits += 1
        parsed.append(hit[0])
        values.append(hit[1])
    return parsed, values


# An item of a top-level list (a message, a system block) sits inside the body and the list.
_ITEM_DEPTH = 2


def _within(value: dict[str, Any] | list[Any], room: int, raw: msgspec.Raw | memoryview) -> bool:
    """Whether ``value`` (parsed from ``raw``) nests at most ``room`` levels of arrays and objects
    (itself one). A part with no more opening brackets than that cannot nest deeper, and most
    messages have a few dozen: counted in C, they skip any walk. Others (tool lists, with their
    schemas) are serialised inside ``_ORJSON_DEPTH - room`` lists, which orjson refuses past its
    depth limit: the same answer as walking them, at C speed."""
    data = bytes(raw)
    if data.count(b"[") + data.count(b"{") <= room:
        return True
    if room >= _ORJSON_DEPTH:
        return _walk(value, room)
    outer, slot = _wrappers(room)
    slot.append(value)
    try:
        orjson.dumps(outer)
    except orjson.JSONEncodeError as exc:
        if "Recursion" in str(exc):
            return False
        return _walk(value, room)  # something else orjson will not write: decide by walking
    finally:
        slot.clear()
    return True


_WRAPPERS: dict[int, tuple[list[Any], list[Any]]] = {}


def _wrappers(room: int) -> tuple[list[Any], list[Any]]:
    """``_ORJSON_DEPTH - room`` nested lists, and the innermost (empty between uses), made once."""
    made = _WRAPPERS.get(room)
    if made is None:
        slot: list[Any] = []
        outer = slot
        for _ in range(_ORJSON_DEPTH - room - 1):
            outer = [outer]
        made = _WRAPPERS[room] = (outer, slot)
    return made


# The deepest value orjson writes (3.x: "Recursion limit reached" past 254 levels).
_ORJSON_DEPTH = 254


def _walk(value: dict[str, Any] | list[Any], room: int) -> bool:
    """``_within`` by walking: a loop, not recursion, as deep input is the point."""
    pending: list[tuple[Any, int]] = [(value, room)]
    pop, push = pending.pop, pending.append
    while pending:
        item, left = pop()
        if left <= 0:
            return False
        children = item.values() if type(item) is dict else item
        for child in children:
            kind = type(child)
            if kind is dict or kind is list:
                push((child, left - 1))
    return True


def _too_deep() -> RequestError:
    return RequestError(f"request body nests arrays and objects more than {MAX_DEPTH} levels deep")


def _json_type(body: bytes) -> str:
    """The Python name of what a valid JSON document that is not an object holds (``list``...)."""
    try:
        return type(orjson.loads(body)).__name__
    except orjson.JSONDecodeError:
        return "invalid JSON"
