"""Converse codec: golden files for the request, the response and the stream, plus what goldens cannot
show. Goldens live in tests/golden/converse/{encode,decode,stream}: ``<case>.json`` is the input,
``<case>.expected.json`` the output. Set CCROUTER_REGEN_GOLDEN=1 to rewrite the expected files."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import orjson
import pytest

from ccrouter.codecs.anthropic.codec import decode_request
from ccrouter.codecs.converse.codec import decode_response, encode_request
from ccrouter.codecs.converse.stream import ConverseStreamDecoder
from ccrouter.codecs.sse import SSEFrame
from ccrouter.errors import UpstreamProtocolError
from ccrouter.messages import StreamEvent
from golden import assert_golden

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "converse"


def _cases(kind: str) -> list[str]:
    return sorted(p.stem for p in (GOLDEN / kind).glob("*.json") if ".expected" not in p.name)


def _load(kind: str, case: str) -> Any:
    return orjson.loads((GOLDEN / kind / f"{case}.json").read_bytes())


def _check(kind: str, case: str, actual: Any) -> None:
    assert_golden(GOLDEN / kind / f"{case}.expected.json", orjson.loads(orjson.dumps(actual)))


def _event_json(event: StreamEvent) -> dict[str, Any]:
    data = dataclasses.asdict(event)
    data.pop("raw", None)
    if type(event).__name__ == "MessageStart":
        data["id"] = "<fresh>"
    return {"event": type(event).__name__, **data}


def _decode_stream(pairs: list[list[Any]]) -> list[StreamEvent]:
    decoder = ConverseStreamDecoder("amazon.nova-pro-v1:0")
    events: list[StreamEvent] = []
    for kind, payload in pairs:
        events += decoder.feed(SSEFrame(event=kind, data=orjson.dumps(payload), raw=b""))
    return events + decoder.finish()


@pytest.mark.parametrize("case", _cases("encode"))
def test_encode_golden(case: str) -> None:
    request = decode_request(_load("encode", case))
    _check("encode", case, encode_request(request))


@pytest.mark.parametrize("case", _cases("decode"))
def test_decode_golden(case: str) -> None:
    response = decode_response(orjson.dumps(_load("decode", case)), model="amazon.nova-pro-v1:0")
    data = dataclasses.asdict(response)
    assert response.id.startswith("bdrk_")
    data["id"] = "<fresh>"
    _check("decode", case, data)


@pytest.mark.parametrize("case", _cases("stream"))
def test_stream_golden(case: str) -> None:
    _check("stream", case, [_event_json(e) for e in _decode_stream(_load("stream", case))])


def test_a_stream_without_message_stop_is_a_protocol_error() -> None:
    delta = {"contentBlockIndex": 0, "delta": {"text": "x"}}
    with pytest.raises(UpstreamProtocolError, match="before messageStop"):
        _decode_stream([["messageStart", {}], ["contentBlockDelta", delta]])


def test_tool_input_before_its_start_is_a_protocol_error() -> None:
    delta = {"contentBlockIndex": 0, "delta": {"toolUse": {"input": "{}"}}}
    with pytest.raises(UpstreamProtocolError, match="before its contentBlockStart"):
        _decode_stream([["messageStart", {}], ["contentBlockDelta", delta]])


def test_a_reply_that_is_not_converse_is_a_protocol_error() -> None:
    with pytest.raises(UpstreamProtocolError, match=r"output\.message"):
        decode_response(b'{"completion": "hi"}', model="m")
    with pytest.raises(UpstreamProtocolError, match="not JSON"):
        decode_response(b"<html>", model="m")
