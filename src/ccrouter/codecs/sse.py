"""Server-sent events framing: an incremental parser for upstream bytes and a frame builder.

Pure and transport-agnostic: ``SSEParser.feed`` takes whatever bytes arrived (split anywhere, even
inside a UTF-8 character) and returns the complete frames. ``SSEFrame.raw`` is the frame's exact bytes
including the blank line, so a same-format passthrough can forward it untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

from ccrouter.errors import UpstreamProtocolError

__all__ = ["SSEFrame", "SSEParser", "frame"]


@dataclass(slots=True)
class SSEFrame:
    event: str | None
    data: bytes
    raw: bytes


class SSEParser:
    """Splits a byte stream into SSE frames (``\\n\\n``, ``\\r\\n\\r\\n`` or ``\\r\\r`` separated).

    Linear in the bytes fed, however they are split: the bytes of an unfinished frame are kept as
    pieces and joined once, when its end arrives, and each piece is searched once. With
    ``max_frame``, a frame (finished or not) longer than that many bytes raises
    ``UpstreamProtocolError`` as soon as the limit is crossed, so a line that never ends cannot
    fill memory."""

    __slots__ = ("_cr", "_max_frame", "_pending", "_size")

    def __init__(self, max_frame: int | None = None) -> None:
        self._pending: list[bytes] = []  # the unfinished frame, CRs already normalised
        self._size = 0
        self._cr = False  # the last byte fed was a CR: a LF right after it is the same line end
        self._max_frame = max_frame

    def feed(self, chunk: bytes) -> list[SSEFrame]:
        if self._cr or b"\r" in chunk:
            chunk = self._normalise(chunk)
        pending = self._pending
        if not pending:
            return self._split(chunk, 0)
        # The frame end may straddle the seam: pending ends with LF and the chunk starts with one.
        if pending[-1].endswith(b"\n") and chunk.startswith(b"\n"):
            search = self._size - 1
        else:
            end = chunk.find(b"\n\n")
            if end < 0:
                pending.append(chunk)
                self._size += len(chunk)
                if self._max_frame is not None and self._size > self._max_frame:
                    raise self._too_large()
                return []
            search = self._size + end
        buffer = pending[0] + chunk if len(pending) == 1 else b"".join([*pending, chunk])
        self._pending, self._size = [], 0
        return self._split(buffer, search)

    def flush(self) -> list[SSEFrame]:
        """Frames left when the stream ended without a final blank line."""
        rest = b"".join(self._pending)
        self._pending, self._size, self._cr = [], 0, False
        if not rest.strip():
            return []
        parsed = _parse(rest + b"\n\n")
        return [parsed] if parsed is not None else []

    def _normalise(self, chunk: bytes) -> bytes:
        # Every CR is a line end; a LF right after a CR belongs to it, even in the next chunk.
        if self._cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._cr = chunk.endswith(b"\r")
        return chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")

    def _split(self, buffer: bytes, search: int) -> list[SSEFrame]:
        """Frames of ``buffer``, whose first frame end is at or after ``search``; keeps the rest."""
        frames: list[SSEFrame] = []
        limit = self._max_frame
        start = 0
        end = buffer.find(b"\n\n", search)
        while end >= 0:
            if limit is not None and end + 2 - start > limit:
                raise self._too_large()
            raw = buffer[start : end + 2]
            start = end + 2
            parsed = _parse(raw)
            if parsed is not None:
                frames.append(parsed)
            end = buffer.find(b"\n\n", start)
        if start < len(buffer):
            self._size = len(buffer) - start
            self._pending.append(buffer[start:] if start else buffer)
            if limit is not None and self._size > limit:
                raise self._too_large()
        return frames

    def _too_large(self) -> UpstreamProtocolError:
        return UpstreamProtocolError(
            f"stream event larger than {self._max_frame} bytes (limits.max_frame_bytes)"
        )


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
