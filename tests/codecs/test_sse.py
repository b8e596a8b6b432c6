"""SSE framing: the fast paths for the usual frame shapes agree with the general parser."""

from __future__ import annotations

import itertools

import pytest

from ccrouter.codecs.sse import SSEParser, _parse, _parse_lines, frame

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
