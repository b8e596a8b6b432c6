"""Decoding a Messages request from its bytes, reusing what earlier requests already decoded
(``ccrouter.codecs.body``). The result is exactly what ``anthropic.decode_request(orjson.loads(body))``
gives, plus ``Received.parts`` (the client's bytes of each top-level field) and ``shared_parts``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ccrouter.codecs.anthropic.codec import build_request, decode_message, decode_system_block, decode_tools
from ccrouter.codecs.body import DecodeCache, decoded, decoded_items, parse, split_body, split_list
from ccrouter.messages import Message, MessagesRequest, TextBlock, Tool

__all__ = ["decode_request_body"]

# System blocks shorter than this are decoded every time rather than cached.
_CACHED_SYSTEM_BLOCK = 512


def decode_request_body(
    body: bytes, cache: DecodeCache | None = None, *, require_max_tokens: bool = True
) -> MessagesRequest:
    """A client's Messages body (bytes) -> canonical, as ``decode_request`` would decode it."""
    fields = split_body(body, cache)
    raw: dict[str, Any] = {}
    messages: list[Message] | None = None
    tools: list[Tool] | None = None
    system: list[TextBlock] | None = None
    for name, value in fields.items():
        if name == "messages":
            raw[name], messages = _messages(value, cache)
        elif name == "tools" and cache is not None:
            raw[name], shared = decoded(cache, value, _decode_tools)
            tools = list(shared)
        elif name == "system" and cache is not None and (blocks := split_list(value)) is not None:
            # Block by block: the long prompt recurs; Claude Code's first block, a short billing line,
            # changes every request and is only decoded.
            raw[name], system = decoded_items(
                cache, blocks, decode_system_block, cache_last=True, min_size=_CACHED_SYSTEM_BLOCK
            )
        else:
            raw[name] = parse(value)
    request = build_request(
        raw, require_max_tokens=require_max_tokens, messages=messages, tools=tools, system=system
    )
    request.shared_parts = cache is not None
    if request.received is not None:
        request.received.parts = {name: (raw[name], value) for name, value in fields.items()}
    return request


def _messages(value: msgspec.Raw, cache: DecodeCache | None) -> tuple[Any, list[Message] | None]:
    """The parsed messages list and its canonical messages; (parsed value, None) when it is not a
    list, for ``build_request`` to report."""
    parts = split_list(value)
    if parts is None:
        return parse(value), None
    # The last message is the new one, and Claude Code's cache_control marker sits on it: next turn
    # it comes back without the marker, as other bytes. ``decoded_items`` never caches it.
    return decoded_items(cache, parts, _decode_message)


def _decode_message(item: Any, index: int) -> Message:
    return decode_message(item, f"messages.{index}")


def _decode_tools(item: Any, _index: int) -> list[Tool]:
    return decode_tools(item)
