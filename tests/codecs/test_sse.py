"""SSE framing: the fast paths for the usual frame shapes agree with the general parser."""

from __future__ import annotations

import itertools
import time

import pytest

from ccrouter.codecs.sse import SSEFrame, SSEParser, _parse, _parse_lines, frame
from ccrouter.errors import UpstreamProtocolError

LINES = [
    b"data: {}",
    b"data:{}",
    b"data: ",
    b"data: [DONE]",
    b"event: ping",
    b"event:",
    b": comment",
    b"id: 7",
]
FRAMES = [b"\n".join(lines) + b"\n\n" for n in (1, 2, 3) for lines in itertools.product(LINES, repeat=n)]


@pytest.mark.parametrize("raw", FRAMES)
def test_fast_paths_agree_with_the_line_parser(raw: bytes) -> None:
    assert _parse(raw) == _parse_lines(raw)


def test_frames_split_anywhere_parse_the_same() -> None:
    stream = frame(b'{"a": 1}', "message_start") + b": keep-alive\n\n" + frame(b"[DONE]") + b"data: x\r\n\r\n"
    whole = SSEParser().feed(stream)
    for cut in range(1, len(stream)):
        parser = SSEParser()
        assert parser.feed(stream[:cut]) + parser.feed(stream[cut:]) == whole
    assert [(f.event, f.data) for f in whole] == [
        ("message_start", b'{"a": 1}'),
        (None, b"[DONE]"),
        (None, b"x"),
    ]


def test_a_crlf_split_between_chunks_is_one_line_end() -> None:
    # "\r" ends one chunk and "\n" starts the next: still one line end, not a blank line.
    stream = b"event: message_start\r\ndata: {}\r\n\r\n" + b"data: a\rdata: b\r\r"
    whole = SSEParser().feed(stream)
    assert [(f.event, f.data) for f in whole] == [("message_start", b"{}"), (None, b"a\nb")]
    for cut in range(1, len(stream)):
        parser = SSEParser()
        assert parser.feed(stream[:cut]) + parser.feed(stream[cut:]) == whole, cut


def test_frames_split_in_many_pieces_parse_the_same() -> None:
    stream = b"".join(frame(b'{"i": %d}' % i, "delta") for i in range(50)) + b"data: tail"
    expected = [*SSEParser().feed(stream), SSEFrame(None, b"tail", b"data: tail\n\n")]
    assert len(expected) == 51
    for size in (1, 2, 3, 7, 64):
        parser = SSEParser()
        got = [f for i in range(0, len(stream), size) for f in parser.feed(stream[i : i + size])]
        assert [*got, *parser.flush()] == expected, size


def test_a_long_line_costs_linear_time() -> None:
    # 16 MB in 64 KB reads: a parser that re-joins or rescans its buffer on every read copies about
    # 2 GB here (seconds); a linear one copies each byte a few times (a few tens of milliseconds).
    piece = b"x" * 65536
    parser = SSEParser()
    started = time.perf_counter()
    assert parser.feed(b"data: ") == []
    for _ in range(256):
        assert parser.feed(piece) == []
    frames = parser.feed(b"\n\n")
    elapsed = time.perf_counter() - started
    assert len(frames) == 1
    assert len(frames[0].data) == 256 * 65536
    assert elapsed < 1.0


def _feed_until_refused(parser: SSEParser, piece: bytes, fed: list[int]) -> None:
    while sum(fed) < 64 * 1024 * 1024:
        fed.append(len(piece))
        parser.feed(piece)


def test_max_frame_raises_as_soon_as_an_unfinished_frame_crosses_it() -> None:
    parser = SSEParser(max_frame=1024 * 1024)
    parser.feed(b"data: ")
    fed: list[int] = []
    with pytest.raises(UpstreamProtocolError, match=r"larger than 1048576 bytes \(limits\.max_frame_bytes\)"):
        _feed_until_refused(parser, b"y" * 65536, fed)
    assert 1024 * 1024 < 6 + sum(fed) <= 1024 * 1024 + 65536


def test_max_frame_bounds_a_frame_that_arrives_whole() -> None:
    big = frame(b"z" * 2000)
    assert SSEParser(max_frame=len(big)).feed(big)[0].data == b"z" * 2000  # exactly the limit passes
    with pytest.raises(UpstreamProtocolError):
        SSEParser(max_frame=len(big) - 1).feed(big)
    with pytest.raises(UpstreamProtocolError):
        SSEParser(max_frame=1000).feed(frame(b"ok") + b"data: " + b"z" * 2000)  # the unfinished rest
