"""The AWS event stream decoder: messages split anywhere, both checksums verified, sizes bounded."""

from __future__ import annotations

import struct
import zlib

import pytest

from ccrouter.codecs.eventstream import EventMessage, EventStreamDecoder, encode_message
from ccrouter.errors import UpstreamProtocolError

HEADERS = {":message-type": "event", ":event-type": "chunk", ":content-type": "application/json"}


def _stream(count: int = 3) -> tuple[bytes, list[bytes]]:
    payloads = [b'{"bytes":"%d","p":"%s"}' % (i, b"x" * i) for i in range(count)]
    return b"".join(encode_message(HEADERS, p) for p in payloads), payloads


def _decode(data: bytes, cuts: list[int], max_frame: int = 1 << 20) -> list[EventMessage]:
    decoder = EventStreamDecoder(max_frame)
    out: list[EventMessage] = []
    start = 0
    for cut in [*cuts, len(data)]:
        out += decoder.feed(data[start:cut])
        start = cut
    out += decoder.flush()
    return out


def test_a_stream_split_at_every_byte_boundary_decodes_the_same() -> None:
    data, payloads = _stream()
    for cut in range(len(data) + 1):
        messages = _decode(data, [cut])
        assert [m.payload for m in messages] == payloads, f"split at {cut}"
        assert all(m.event_type == "chunk" and m.message_type == "event" for m in messages)


def test_a_stream_fed_one_byte_at_a_time() -> None:
    data, payloads = _stream(5)
    messages = _decode(data, list(range(1, len(data))))
    assert [m.payload for m in messages] == payloads
    assert messages[0].headers[":content-type"] == "application/json"


def test_the_messages_before_a_bad_one_come_out_first() -> None:
    data, payloads = _stream(3)
    first = len(encode_message(HEADERS, payloads[0]))
    broken = bytearray(data)
    broken[first + 20] ^= 0x01  # inside the second message's headers
    decoder = EventStreamDecoder(1 << 20)
    messages = decoder.feed(bytes(broken))
    assert next(messages).payload == payloads[0]
    with pytest.raises(UpstreamProtocolError, match="message checksum mismatch"):
        next(messages)
    with pytest.raises(UpstreamProtocolError, match="after a framing error"):
        list(decoder.feed(b"more"))


def test_a_bad_prelude_crc_is_refused_before_its_length_is_trusted() -> None:
    message = bytearray(encode_message(HEADERS, b"{}"))
    message[3] = 0xFF  # the total length now says ~4 GB
    with pytest.raises(UpstreamProtocolError, match="prelude checksum mismatch"):
        _decode(bytes(message), [])


def test_a_bad_message_crc() -> None:
    message = bytearray(encode_message(HEADERS, b'{"a":1}'))
    message[-1] ^= 0xFF
    with pytest.raises(UpstreamProtocolError, match="message checksum mismatch"):
        _decode(bytes(message), [5])


def test_a_stream_truncated_at_the_end() -> None:
    data, _ = _stream(2)
    with pytest.raises(UpstreamProtocolError, match="truncated"):
        _decode(data[:-3], [])
    with pytest.raises(UpstreamProtocolError, match="truncated"):
        _decode(data[:5], [])  # not even a whole prelude


def test_a_message_larger_than_the_frame_limit_is_refused_from_its_prelude() -> None:
    big = encode_message(HEADERS, b"x" * 5000)
    decoder = EventStreamDecoder(4096)
    with pytest.raises(UpstreamProtocolError, match="max_frame_bytes"):
        list(decoder.feed(big[:12]))  # the prelude alone: nothing of the body was buffered


def test_impossible_lengths_with_a_valid_prelude_crc() -> None:
    lengths = struct.pack(">II", 10, 0)  # shorter than a prelude and a checksum
    prelude = lengths + struct.pack(">I", zlib.crc32(lengths))
    with pytest.raises(UpstreamProtocolError, match="impossible lengths"):
        _decode(prelude + b"\x00" * 4, [])


def test_headers_that_lie_about_their_length_do_not_crash_the_decoder() -> None:
    headers = b"\x05:name\x07\xff\xff"  # a string header claiming 65535 bytes
    total = 12 + len(headers) + 4
    lengths = struct.pack(">II", total, len(headers))
    prelude = lengths + struct.pack(">I", zlib.crc32(lengths))
    body = prelude + headers
    message = body + struct.pack(">I", zlib.crc32(body))
    # botocore reads what there is (its slices stop at the end): a message, or our protocol error.
    try:
        messages = _decode(message, [])
    except UpstreamProtocolError:
        return
    assert [m.payload for m in messages] == [b""]
