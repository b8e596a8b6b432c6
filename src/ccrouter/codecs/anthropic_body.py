"""Decoding a Messages request from its bytes, reusing what earlier requests already decoded.

Claude Code resends the whole conversation every turn: the same ~25 tool definitions (about half of
an 80-130 KB body) and the same history, plus one new exchange. ``decode_request_body`` splits the
body at the top level and the messages list without building them (msgspec's ``Raw``), hashes each
message's bytes and the tools' bytes (xxh3, 128 bits), and parses and decodes only what ``DecodeCache`` has
not seen. The result is exactly what ``anthropic.decode_request(orjson.loads(body))`` gives; the
cached parts (the parsed dicts in ``raw`` and the canonical messages and tools) are shared between
requests, which is safe because every edit downstream is copy-on-write (``ccrouter.routing.prepare``,
``ccrouter.routing.fit``, the passthrough encoders).
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
from xxhash import xxh3_128_intdigest

from ccrouter.codecs.anthropic import build_request, decode_message, decode_tools
from ccrouter.errors import RequestError
from ccrouter.messages import Message, MessagesRequest, Tool

__all__ = ["DecodeCache", "decode_request_body"]

_TOP = msgspec.json.Decoder(dict[str, msgspec.Raw])
_LIST = msgspec.json.Decoder(list[msgspec.Raw])
# What a cached part costs for its raw bytes (parsed dicts plus canonical objects), roughly, and per
# entry whatever its size (the entry, its tuple, a message's smallest dict and objects).
_OBJECT_OVERHEAD = 3
_ENTRY_OVERHEAD = 512


class DecodeCache:
    """Decoded messages and tool lists by a 128-bit hash of their raw JSON, bounded by size. (A
    collision would hand a request someone else's message, so the hash is wide enough never to.)

    Two generations approximate LRU: hits and new entries go to the young one; when it holds half
    the budget it becomes the old one and the previous old one is dropped.
    """

    def __init__(self, *, max_bytes: int = 16 * 1024 * 1024) -> None:
        self._half = max(1, max_bytes // 2)
        self._young: dict[int, Any] = {}
        self._old: dict[int, Any] = {}
        self._young_bytes = 0
        self.hits = 0
        self.misses = 0

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
        cost = size * _OBJECT_OVERHEAD + _ENTRY_OVERHEAD
        if self._young_bytes + cost > self._half:
            self._old = self._young
            self._young = {}
            self._young_bytes = 0
        self._young[key] = value
        self._young_bytes += cost


def decode_request_body(
    body: bytes, cache: DecodeCache | None = None, *, require_max_tokens: bool = True
) -> MessagesRequest:
    """A client's Messages body (bytes) -> canonical, as ``decode_request`` would decode it."""
    if not body:
        raise RequestError("request body is empty: expected a JSON object")
    try:
        fields = _TOP.decode(body)
    except msgspec.ValidationError:
        raise RequestError(f"request body must be a JSON object, got {_json_type(body)}") from None
    except msgspec.DecodeError as exc:
        raise RequestError(f"request body is not valid JSON: {exc}") from None
    raw: dict[str, Any] = {}
    messages: list[Message] | None = None
    tools: list[Tool] | None = None
    for name, value in fields.items():
        if name == "messages":
            raw[name], messages = _messages(value, cache)
        elif name == "tools" and cache is not None:
            raw[name], tools = _tools(value, cache)
        else:
            raw[name] = orjson.loads(memoryview(value))
    request = build_request(raw, require_max_tokens=require_max_tokens, messages=messages, tools=tools)
    request.shared_parts = cache is not None
    request.raw_parts = {name: (raw[name], value) for name, value in fields.items()}
    return request


def _messages(value: msgspec.Raw, cache: DecodeCache | None) -> tuple[Any, list[Message] | None]:
    """The parsed messages list and its canonical messages; (parsed value, None) when it is not a
    list, for ``build_request`` to report."""
    try:
        parts = _LIST.decode(value)
    except msgspec.ValidationError:
        return orjson.loads(memoryview(value)), None
    parsed: list[Any] = []
    canonical: list[Message] = []
    last = len(parts) - 1
    for index, part in enumerate(parts):
        view = memoryview(part)
        # The last message is the new one, and Claude Code's cache_control marker sits on it: next
        # turn it comes back without the marker, as other bytes. Caching it would only evict.
        store = cache if index != last else None
        key = xxh3_128_intdigest(view) if store is not None else 0
        hit = store.get(key, len(view)) if store is not None else None
        if hit is None:
            item = orjson.loads(view)
            hit = (item, decode_message(item, f"messages.{index}"))
            if store is not None:
                store.put(key, hit, len(view))
        parsed.append(hit[0])
        canonical.append(hit[1])
    return parsed, canonical


def _tools(value: msgspec.Raw, cache: DecodeCache) -> tuple[Any, list[Tool]]:
    view = memoryview(value)
    key = xxh3_128_intdigest(view)
    hit = cache.get(key, len(view))
    if hit is None:
        item = orjson.loads(view)
        hit = (item, decode_tools(item))
        cache.put(key, hit, len(view))
    parsed, tools = hit
    return parsed, list(tools)


def _json_type(body: bytes) -> str:
    """The Python name of what a valid JSON document that is not an object holds (``list``...)."""
    try:
        return type(orjson.loads(body)).__name__
    except orjson.JSONDecodeError:
        return "invalid JSON"
