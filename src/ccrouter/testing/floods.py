"""Oversized replies for the fake upstream: a huge body, a gzip bomb, a line that never ends.

Each is generated piece by piece, so the fake stays small however large ``Fault.size`` is, and
``RecordedRequest.sent`` counts the body bytes that went out before the client stopped reading: a
test can tell a gateway that gave up at its limit from one that read everything.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterator

from aiohttp import web

from ccrouter.testing.script import Fault, RecordedRequest

__all__ = ["flood"]

_PIECE = 64 * 1024
_FILL = b"a" * _PIECE


async def flood(request: web.Request, record: RecordedRequest, fault: Fault) -> web.StreamResponse:
    """Send the ``huge_body``, ``gzip_bomb`` or ``endless_line`` reply for ``fault``."""
    sse = record.stream and fault.kind != "huge_body"
    headers = {"Content-Type": "text/event-stream" if sse else "application/json", **fault.headers}
    if fault.kind == "gzip_bomb":
        headers["Content-Encoding"] = "gzip"
        pieces: Iterator[bytes] = iter(_bomb(fault.size, sse))
    elif fault.kind == "huge_body":
        pieces = _padded_json(fault.size)
    else:
        pieces = _line(b"data: " if sse else b'{"text": "', fault.size)
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    try:
        for piece in pieces:
            await response.write(piece)
            record.sent += len(piece)
        await response.write_eof()
    except ConnectionError:  # the client stopped reading: what it refused is the point of the test
        pass
    return response


def _line(start: bytes, size: int) -> Iterator[bytes]:
    """``start`` then filler up to ``size`` bytes, with no line end anywhere."""
    yield start
    left = size - len(start)
    while left > 0:
        piece = _FILL[: min(left, _PIECE)]
        left -= len(piece)
        yield piece


def _padded_json(size: int) -> Iterator[bytes]:
    """A valid JSON object of ``size`` bytes (at least 16): one long string field."""
    head, tail = b'{"padding": "', b'"}'
    yield from _line(head, max(size - len(tail), len(head)))
    yield tail


@functools.lru_cache(maxsize=4)
def _bomb(size: int, sse: bool) -> tuple[bytes, ...]:
    """gzip pieces inflating to ``size`` bytes (one endless line); compressed once per size, in
    steps, so not even the fake holds the inflated bytes."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: the gzip container
    out = [packer.compress(line) for line in _line(b"data: " if sse else b'{"text": "', size)]
    out.append(packer.flush())
    joined = b"".join(out)
    return tuple(joined[i : i + _PIECE] for i in range(0, len(joined), _PIECE))
