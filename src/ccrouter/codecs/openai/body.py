"""Decoding a chat-completions request from its bytes, reusing what earlier requests already decoded
(``ccrouter.codecs.body``). The result is exactly what ``front.decode_request(orjson.loads(body))``
gives.
"""

from __future__ import annotations

from typing import Any

from ccrouter.codecs.body import DecodeCache, decoded, decoded_items, parse, split_body, split_list
from ccrouter.codecs.openai.front import DecodedItem, decode_item, decode_request, decode_tools
from ccrouter.messages import MessagesRequest, Tool

__all__ = ["decode_openai_body"]


def decode_openai_body(body: bytes, cache: DecodeCache | None = None) -> MessagesRequest:
    """An OpenAI client's chat-completions body (bytes) -> canonical."""
    fields = split_body(body, cache)
    raw: dict[str, Any] = {}
    items: list[DecodedItem] | None = None
    tools: list[Tool] | None = None
    for name, value in fields.items():
        parts = split_list(value) if name == "messages" and cache is not None else None
        if parts is not None:
            # Every message but the last, which is the new one (see ``anthropic.body``).
            raw[name], items = decoded_items(cache, parts, decode_item)
        elif name == "tools" and cache is not None:
            raw[name], shared = decoded(cache, value, _decode_tools)
            tools = list(shared)
        else:
            raw[name] = parse(value)
    # ``shared_parts`` stays False: the canonical messages are assembled anew from the shared items
    # (tool results join user messages), so they never recur by identity.
    return decode_request(raw, items=items, tools=tools)


def _decode_tools(item: Any, _index: int) -> list[Tool]:
    return decode_tools(item)
