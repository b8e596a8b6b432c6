"""What a fake upstream answers: scripted replies and faults, consumed one per request, in order.

``Reply`` is format-neutral: the ``wire_*`` modules render it as Anthropic, OpenAI chat or Gemini.
Token counts follow the canonical (Anthropic) convention: ``input_tokens`` excludes cached input, and
``output_tokens`` includes thinking. Each wire adds them up its own way (OpenAI ``prompt_tokens`` and
Gemini ``promptTokenCount`` include the cached part; Gemini ``candidatesTokenCount`` excludes thoughts),
so a codec that converts correctly recovers exactly the numbers of the ``Reply``.
"""

from __future__ import annotations

import base64
import hashlib
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

import orjson

__all__ = [
    "Fault",
    "FaultKind",
    "RecordedRequest",
    "RenderContext",
    "Reply",
    "Script",
    "ScriptItem",
    "StopKind",
    "ToolCall",
    "WireName",
    "dumps_verbatim",
    "estimate_tokens",
    "fragments",
    "item_from_dict",
    "item_to_dict",
    "raw_placeholder",
    "render_context",
]

WireName = Literal["anthropic", "openai", "gemini", "converse", "openai_responses"]
StopKind = Literal["end", "length", "stop_sequence"]
FaultKind = Literal[
    "status",
    "timeout",
    "drop_before_first_byte",
    "drop_mid_stream",
    "slow_first_byte",
    "stream_error",
    "redirect",
    "huge_body",
    "gzip_bomb",
    "endless_line",
    "bad_frame",
]
_STOP_KINDS = frozenset(get_args(StopKind))
_FAULT_KINDS = frozenset(get_args(FaultKind))
_TIMEOUT_CAP = 300.0


@dataclass
class ToolCall:
    """One tool call. A ``str`` ``arguments`` is sent verbatim (so a test can send broken JSON)."""

    name: str
    arguments: dict[str, Any] | str
    id: str | None = None

    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return orjson.dumps(self.arguments).decode()


@dataclass
class Reply:
    """A successful answer. ``None`` token counts are estimated (request body size, reply length)."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    thinking: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int = 0
    stop: StopKind = "end"
    stop_sequence: str | None = None
    chunk_size: int = 8  # characters per streamed text / thinking / argument fragment
    chunk_delay: float = 0.0  # seconds between streamed frames
    thinking_signature: str | None = None  # None: derived from the thinking text

    def __post_init__(self) -> None:
        if self.stop not in _STOP_KINDS:
            raise ValueError(f"Reply.stop must be one of {sorted(_STOP_KINDS)}, not {self.stop!r}")
        if self.chunk_size < 1:
            raise ValueError("Reply.chunk_size must be at least 1")

    def signature(self) -> str:
        """The thinking signature: opaque base64, deterministic so tests can compare it."""
        if self.thinking_signature is not None:
            return self.thinking_signature
        digest = hashlib.sha256((self.thinking or "").encode()).digest()
        return base64.b64encode(b"fake-signature:" + digest).decode()


@dataclass
class Fault:
    """A failure injected for one request.

    ``status``: answer ``status`` with ``body`` (None: the format's own error envelope).
    ``timeout``: accept, then never answer until the client gives up (at most ``delay`` or 300 s).
    ``drop_before_first_byte``: close the connection without sending a byte (after ``delay``, if any).
    ``drop_mid_stream``: send ``after_chunks`` frames of ``reply`` (half the body when not streaming),
    then close the connection.
    ``slow_first_byte``: wait ``delay`` seconds, then send ``reply``.
    ``stream_error``: send ``after_chunks`` frames of ``reply``, then the format's in-stream error
    event for ``status`` (a plain error response when the request is not streamed).
    ``bad_frame``: send ``after_chunks`` frames of ``reply``, then an SSE frame whose data is not JSON,
    then end the stream (a plain error response when the request is not streamed).
    ``redirect``: answer ``status`` (302 unless a 3xx is given) with ``Location: location``.
    ``huge_body``: a 200 response of ``size`` bytes, sent in pieces and never held whole.
    ``gzip_bomb``: a 200 response, ``Content-Encoding: gzip``, that inflates to ``size`` bytes.
    ``endless_line``: a 200 response whose body is one line of ``size`` bytes that never ends (an
    SSE ``data:`` line when the request is streamed, after ``after_chunks`` frames of ``reply`` when
    ``reply`` is given).
    For the last three, ``RecordedRequest.sent`` counts the body bytes the fake managed to send.
    ``reply`` None means the default behaviour answers.
    """

    kind: FaultKind
    status: int = 500
    retry_after: float | None = None
    body: bytes | None = None
    delay: float = 0.0
    after_chunks: int = 2
    headers: dict[str, str] = field(default_factory=dict)
    reply: Reply | None = None
    location: str = ""
    size: int = 0

    def __post_init__(self) -> None:
        if self.kind not in _FAULT_KINDS:
            raise ValueError(f"Fault.kind must be one of {sorted(_FAULT_KINDS)}, not {self.kind!r}")

    def wait_bound(self) -> float:
        """How long a ``timeout`` fault holds the request."""
        return min(self.delay, _TIMEOUT_CAP) if self.delay > 0 else _TIMEOUT_CAP


ScriptItem = Reply | Fault


@dataclass
class RecordedRequest:
    """One request as the fake received it. ``headers`` keys are lower-cased."""

    wire: WireName
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any  # parsed JSON, None when the body was empty or not JSON
    raw: bytes
    model: str = ""
    stream: bool = False
    sent: int = 0  # body bytes sent by a huge_body, gzip_bomb or endless_line fault

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view (the raw bytes are summarised by their size)."""
        return {
            "wire": self.wire,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": self.body,
            "size": len(self.raw),
            "model": self.model,
            "stream": self.stream,
            "sent": self.sent,
        }


class Script:
    """FIFO queue of replies and faults."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: deque[ScriptItem] = deque()

    def push(self, items: Iterable[ScriptItem]) -> None:
        for item in items:
            if not isinstance(item, Reply | Fault):
                raise TypeError(f"script items must be Reply or Fault, not {type(item).__name__}")
            self._items.append(item)

    def pop(self) -> ScriptItem | None:
        return self._items.popleft() if self._items else None

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


def item_from_dict(data: Mapping[str, Any]) -> ScriptItem:
    """Build a Reply or Fault from JSON (a dict with ``kind`` is a Fault); raises TypeError/ValueError."""
    if not isinstance(data, Mapping):
        raise TypeError("each script item must be a JSON object")
    values = dict(data)
    values.pop("type", None)  # an optional "reply"/"fault" tag, for readability
    if "kind" not in values:
        return _reply_from_dict(values)
    if isinstance(values.get("body"), str):
        values["body"] = values["body"].encode()
    if isinstance(values.get("reply"), Mapping):
        values["reply"] = _reply_from_dict(dict(values["reply"]))
    return Fault(**values)


def _reply_from_dict(values: dict[str, Any]) -> Reply:
    calls = values.get("tool_calls") or []
    values["tool_calls"] = [ToolCall(**call) if isinstance(call, Mapping) else call for call in calls]
    return Reply(**values)


def item_to_dict(item: ScriptItem) -> dict[str, Any]:
    """Inverse of ``item_from_dict`` (bytes bodies decoded as UTF-8)."""
    values = asdict(item)
    if isinstance(item, Fault):
        values["body"] = item.body.decode("utf-8", "replace") if item.body is not None else None
    return values


def estimate_tokens(chars: int) -> int:
    """About four characters per token, never zero (a rough but deterministic estimate)."""
    return max(1, (chars + 3) // 4)


def fragments(text: str, size: int) -> list[str]:
    """Split ``text`` into pieces of ``size`` characters (none for an empty text)."""
    return [text[i : i + size] for i in range(0, len(text), size)]


def raw_placeholder(index: int) -> str:
    """A string that stands for raw JSON text in an object given to ``dumps_verbatim``."""
    return f"\x00raw-json-{index}\x00"


def dumps_verbatim(obj: Any, raws: list[str]) -> bytes:
    """Serialise ``obj``, then put each ``raws[i]`` verbatim where ``raw_placeholder(i)`` stood.

    This is how a tool call's ``str`` arguments reach a JSON-object field unchanged, even when broken.
    """
    data = orjson.dumps(obj)
    for index, raw in enumerate(raws):
        data = data.replace(orjson.dumps(raw_placeholder(index)), raw.encode(), 1)
    return data


@dataclass(frozen=True, slots=True)
class RenderContext:
    """Everything a wire renderer needs besides the Reply; token counts already resolved."""

    model: str
    seq: int  # request number, for deterministic ids
    created: int  # unix seconds
    input_tokens: int  # uncached input
    output_tokens: int  # includes thinking
    thinking_tokens: int
    cache_read_tokens: int
    include_usage: bool = False  # OpenAI stream_options.include_usage
    sse: bool = True  # Gemini alt=sse (else a streamed JSON array)


def render_context(reply: Reply, request: RecordedRequest, seq: int, created: int) -> RenderContext:
    """Resolve the Reply's token counts against the request it answers."""
    thinking_chars = len(reply.thinking or "")
    if reply.output_tokens is None:
        chars = len(reply.text) + thinking_chars + sum(len(c.arguments_json()) for c in reply.tool_calls)
        output = estimate_tokens(chars)
    else:
        output = reply.output_tokens
    thinking = min(output, estimate_tokens(thinking_chars)) if reply.thinking else 0
    body = request.body if isinstance(request.body, dict) else {}
    options = body.get("stream_options")
    return RenderContext(
        model=request.model,
        seq=seq,
        created=created,
        input_tokens=estimate_tokens(len(request.raw)) if reply.input_tokens is None else reply.input_tokens,
        output_tokens=output,
        thinking_tokens=thinking,
        cache_read_tokens=reply.cache_read_tokens,
        include_usage=isinstance(options, dict) and bool(options.get("include_usage")),
        sse=request.query.get("alt") == "sse",
    )
