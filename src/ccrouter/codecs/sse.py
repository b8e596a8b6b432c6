"""Server-sent events framing: an incremental parser for upstream bytes and a frame builder.

Pure and transport-agnostic: ``SSEParser.feed`` takes whatever bytes arrived (split anywhere, even
inside a UTF-8 character) and returns the complete frames. ``SSEFrame.raw`` is the frame's exact bytes
including the blank line, so a same-format passthrough can forward it untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SSEFrame", "SSEParser", "frame"]


@dataclass(slots=True)
class SSEFrame:
    event: str | None
    data: bytes
    raw: bytes


class SSEParser:
    """Splits a byte stream into SSE frames (``\\n\\n``, ``\\r\\n\\r\\n`` or ``\\r\\r`` separated)."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[SSEFrame]:
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        frames: list[SSEFrame] = []
        start = 0
        while True:
            end = buffer.find(b"\n\n", start)
            if end < 0:
                break
            raw = buffer[start : end + 2]
            start = end + 2
            parsed = _parse(raw)
            if parsed is not None:
                frames.append(parsed)
        self._buffer = buffer[start:]
        return frames

    def flush(self) -> list[SSEFrame]:
        """Frames left when the stream ended without a final blank line."""
        rest, self._buffer = self._buffer, b""
        if not rest.strip():
            return []
        parsed = _parse(rest + b"\n\n")
        return [parsed] if parsed is not None else []


def _parse(raw: bytes) -> SSEFrame | None:
    # The two shapes providers send, without the general line loop: "data: X" (OpenAI, Gemini) and
    # "event: E" + "data: X" (Anthropic); X is one line of JSON. ``raw`` ends with the blank line.
    last = len(raw) - 2
    if raw.startswith(b"data: "):
        if raw.find(b"\n", 6) == last:
            return SSEFrame(event=None, data=raw[6:last], raw=raw)
    elif raw.startswith(b"event: "):
        newline = raw.find(b"\n", 7)
        if raw.startswith(b"data: ", newline + 1) and raw.find(b"\n", newline + 7) == last:
            return SSEFrame(
                event=raw[7:newline].decode("utf-8", "replace"), data=raw[newline + 7 : last], raw=raw
            )
    return _parse_lines(raw)


def _parse_lines(raw: bytes) -> SSEFrame | None:
    event: str | None = None
    data_lines: list[bytes] = []
    for line in raw.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            data_lines.append(value)
        elif name == b"event":
            event = value.decode("utf-8", "replace")
    if event is None and not data_lines:
        return None  # a comment-only or empty frame (keep-alive)
    return SSEFrame(event=event, data=b"\n".join(data_lines), raw=raw)


def frame(data: bytes, event: str | None = None) -> bytes:
    """Build one SSE frame. ``data`` must not contain newlines (compact JSON never does)."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
