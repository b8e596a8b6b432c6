"""AWS event stream framing (``application/vnd.amazon.eventstream``), decoded incrementally.

Bedrock's streamed answers (``InvokeModelWithResponseStream``, ``ConverseStream``) are a sequence of
binary messages (https://docs.aws.amazon.com/AmazonS3/latest/API/RESTSelectObjectAppendix.html)::

    total length u32 | headers length u32 | prelude CRC32 u32 | headers | payload | message CRC32 u32

``EventStreamDecoder.feed`` takes whatever bytes arrived (split anywhere) and yields each complete
message. Who does what:

- ours: the incremental split. Pieces are kept in a list and joined once per message (botocore's own
  ``EventStreamBuffer`` appends to one bytes object, quadratic for a large message arriving in many
  chunks), the prelude CRC is checked before its lengths are trusted (a corrupt length would make the
  decoder wait for bytes that never come), and a message longer than ``max_frame`` is refused as soon
  as its prelude says so, before its bytes are buffered.
- botocore's (``botocore.eventstream``): each complete message is verified and parsed by a fresh
  ``EventStreamBuffer`` holding exactly that message: both CRCs, the header lengths, every header
  value type of the format.

``encode_message`` writes a message with string headers (what Bedrock sends; the fake Bedrock uses it).

Every problem raises ``UpstreamProtocolError``; ``feed`` is a generator, so the messages before a bad
one reach the caller first.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.eventstream import EventStreamBuffer, ParserError

from ccrouter.errors import UpstreamProtocolError

__all__ = ["PRELUDE_LENGTH", "EventMessage", "EventStreamDecoder", "encode_message"]

PRELUDE_LENGTH = 12
_TRAILER_LENGTH = 4
_MIN_MESSAGE = PRELUDE_LENGTH + _TRAILER_LENGTH


@dataclass(frozen=True, slots=True)
class EventMessage:
    """One verified message: its headers (``:message-type``, ``:event-type``...) and payload."""

    headers: Mapping[str, Any]
    payload: bytes

    @property
    def message_type(self) -> str:
        value = self.headers.get(":message-type")
        return value if isinstance(value, str) else ""

    @property
    def event_type(self) -> str:
        """``:event-type`` of an event, ``:exception-type`` of an exception, else ``:error-code``."""
        for name in (":event-type", ":exception-type", ":error-code"):
            value = self.headers.get(name)
            if isinstance(value, str):
                return value
        return ""


class EventStreamDecoder:
    """Splits an event stream into verified messages. Stateful, one per stream."""

    __slots__ = ("_broken", "_buffer", "_max_frame", "_need", "_pieces", "_pos", "_size")

    def __init__(self, max_frame: int) -> None:
        self._max_frame = max_frame
        # Unread bytes: ``_buffer[_pos:]`` then ``_pieces`` (joined only once a message is whole, so
        # each byte is copied a bounded number of times however the stream is split).
        self._buffer = b""
        self._pos = 0
        self._pieces: list[bytes] = []
        self._size = 0
        self._need = 0  # the current message's total length, once its prelude is checked
        self._broken = False

    def feed(self, chunk: bytes) -> Iterator[EventMessage]:
        """The messages ``chunk`` completes (a generator: iterate it)."""
        if self._broken:
            raise UpstreamProtocolError("event stream: data after a framing error")
        if chunk:
            self._pieces.append(chunk)
            self._size += len(chunk)
        try:
            while True:
                if not self._need:
                    if self._size < PRELUDE_LENGTH:
                        return
                    self._need = self._prelude()
                if self._size < self._need:
                    return
                yield self._message(self._take(self._need))
                self._need = 0
        except UpstreamProtocolError:
            self._broken = True
            raise

    def flush(self) -> Iterator[EventMessage]:
        """Nothing more comes: raises if a message was left unfinished."""
        if self._size and not self._broken:
            self._broken = True
            raise UpstreamProtocolError(
                f"event stream: truncated, the stream ended inside a message ({self._size} bytes left)"
            )
        return iter(())

    def _joined(self) -> bytes:
        if self._pieces:
            self._buffer = b"".join([self._buffer[self._pos :], *self._pieces])
            self._pos = 0
            self._pieces = []
        return self._buffer

    def _prelude(self) -> int:
        """The message length from a checked prelude (the unread bytes hold at least one)."""
        if len(self._buffer) - self._pos < PRELUDE_LENGTH:
            self._joined()
        head = self._buffer[self._pos : self._pos + PRELUDE_LENGTH]
        total, headers, crc = struct.unpack(">III", head)
        if zlib.crc32(head[:8]) != crc:
            raise UpstreamProtocolError("event stream: prelude checksum mismatch")
        if total < _MIN_MESSAGE or headers > total - _MIN_MESSAGE:
            raise UpstreamProtocolError(f"event stream: impossible lengths ({total}, headers {headers})")
        if total > self._max_frame:
            raise UpstreamProtocolError(
                f"event stream: a message of {total} bytes is larger than {self._max_frame} bytes "
                "(limits.max_frame_bytes)"
            )
        return int(total)

    def _take(self, size: int) -> bytes:
        if len(self._buffer) - self._pos < size:
            self._joined()
        start = self._pos
        self._pos += size
        self._size -= size
        message = self._buffer[start : self._pos]
        if self._pos == len(self._buffer):
            self._buffer, self._pos = b"", 0
        return message

    @staticmethod
    def _message(data: bytes) -> EventMessage:
        buffer = EventStreamBuffer()
        buffer.add_data(data)
        try:
            parsed = next(buffer)
        # botocore's parse errors, and what its header parser raises on headers that lie about their
        # own lengths (their bytes passed the CRC, so the sender built them so).
        except (ParserError, struct.error, ValueError, IndexError, StopIteration) as exc:
            reason = str(exc) or type(exc).__name__
            if "Checksum mismatch" in reason:
                reason = "message checksum mismatch"
            raise UpstreamProtocolError(f"event stream: {reason[:200]}") from None
        return EventMessage(headers=parsed.headers, payload=bytes(parsed.payload))


_STRING_HEADER = 7


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One message with string-valued headers, both CRCs computed."""
    parts: list[bytes] = []
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        parts.append(struct.pack(">B", len(raw_name)) + raw_name)
        parts.append(struct.pack(">BH", _STRING_HEADER, len(raw_value)) + raw_value)
    encoded = b"".join(parts)
    total = PRELUDE_LENGTH + len(encoded) + len(payload) + _TRAILER_LENGTH
    lengths = struct.pack(">II", total, len(encoded))
    prelude = lengths + struct.pack(">I", zlib.crc32(lengths))
    body = prelude + encoded + payload
    return body + struct.pack(">I", zlib.crc32(body))
