"""Oversized replies for the fake upstream: a huge body, a gzip bomb, a line that never ends.

Each is generated piece by piece, so the fake stays small however large ``Fault.size`` is, and
``RecordedRequest.sent`` counts the body bytes that went out before the client stopped reading: a
test can tell a gateway that gave up at its limit from one that read everything.
"""

from __future__ import annotations

import functools
import gzip
from collections.abc import Iterator

from aiohttp import web

from ccrouter.testing.script import Fault, RecordedRequest

__all__ = ["flood"]

_PIECE = 64 * 1024
_FILL = b"a" * _PIECE
_MIB = 1024 * 1024


async def flood(
    request: web.Request, record: RecordedRequest, fault: Fault, prelude: bytes = b""
) -> web.StreamResponse:
    """Send the ``huge_body``, ``gzip_bomb`` or ``endless_line`` reply for ``fault``; an
    ``endless_line`` sends ``prelude`` (well-formed stream frames) first."""
    sse = record.stream and fault.kind != "huge_body"
    headers = {"Content-Type": "text/event-stream" if sse else "application/json", **fault.headers}
    if fault.kind == "gzip_bomb":
        headers["Content-Encoding"] = "gzip"
        pieces: Iterator[bytes] = iter(_bomb(fault.size, sse))
    elif fault.kind == "huge_body":
        pieces = _padded_json(fault.size)
    else:
        pieces = _line(prelude + (b"data: " if sse else b'{"text": "'), fault.size + len(prelude))
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
    """gzip inflating to one endless line of about ``size`` bytes: gzip members, one compressed MiB
    of filler each, repeated (RFC 1952 allows several members); no one holds the inflated bytes."""
    member = gzip.compress(b"a" * _MIB)
    return (gzip.compress(b"data: " if sse else b'{"text": "'), *[member] * max(1, size // _MIB))
