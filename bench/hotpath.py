"""In-process cost of each pure step of ccrouter's hot path, on the Claude-Code-sized body, no HTTP.

    .venv/bin/python bench/hotpath.py

Each step runs ``REPEAT`` times after a warm-up; the table shows the median microseconds per call.
The steps are the ones every request takes through codecs, token counting and the provider
adapters, so a change in any of them shows here before it shows in ``make bench``. The token count
is measured warm (Claude Code resends the same history every turn) and cold (a new conversation);
so is the OpenAI build, on requests decoded as the server does (one DecodeCache, a new last turn each).
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
from payloads import UPSTREAM_MODEL, answers, request_bodies

from ccrouter.codecs.anthropic import codec as anthropic_codec
from ccrouter.codecs.anthropic.body import decode_request_body
from ccrouter.codecs.anthropic.stream import AnthropicStreamDecoder
from ccrouter.codecs.body import DecodeCache
from ccrouter.codecs.openai import chat as openai_chat
from ccrouter.codecs.openai.stream import OpenAIStreamEncoder
from ccrouter.codecs.sse import SSEParser
from ccrouter.config import ProviderConfig
from ccrouter.providers.anthropic import AnthropicAdapter
from ccrouter.providers.openai import OpenAIAdapter
from ccrouter.tokens import TokenCounter

REPEAT = 300


def timed(fn: Callable[[], Any], repeat: int = REPEAT) -> float:
    """Median microseconds of ``fn()``."""
    for _ in range(10):
        fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - started)
    return statistics.median(samples) / 1000


def _stream_cost(
    raw: bytes, decoder_factory: Callable[[], Any], encode: Callable[[Any], bytes]
) -> Callable[[], None]:
    def run() -> None:
        parser, decoder = SSEParser(), decoder_factory()
        for sse in parser.feed(raw):
            for event in decoder.feed(sse):
                encode(event)
        for event in decoder.finish():
            encode(event)

    return run


def steps() -> list[tuple[str, float]]:
    bodies = request_bodies()
    anthropic_body, openai_body = bodies.anthropic.fill(1), bodies.openai.fill(1)
    upstream = answers()
    openai_cfg = ProviderConfig(name="fake", type="openai", base_url="http://127.0.0.1:9/v1", models=[])
    anthropic_cfg = ProviderConfig(name="fake", type="anthropic", base_url="http://127.0.0.1:9", models=[])
    openai_adapter, anthropic_adapter = OpenAIAdapter(openai_cfg), AnthropicAdapter(anthropic_cfg)
    data = orjson.loads(anthropic_body)
    request = anthropic_codec.decode_request(orjson.loads(anthropic_body))
    counter = TokenCounter()
    counter.count_request(request)
    decode_cache = DecodeCache()
    numbers = itertools.count(2)
    # Turns of one conversation decoded as the server does: shared history objects, a new last turn.
    turn_cache = DecodeCache()
    turns = itertools.cycle([decode_request_body(bodies.anthropic.fill(n), turn_cache) for n in range(50)])
    oai_call = openai_adapter.build(request, UPSTREAM_MODEL, stream=False)
    oai_response = openai_adapter.parse_response(upstream["openai"].json, oai_call)
    ant_call = anthropic_adapter.build(request, UPSTREAM_MODEL, stream=False)
    ant_response = anthropic_adapter.parse_response(upstream["anthropic"].json, ant_call)
    oai_data = orjson.loads(openai_body)
    oai_request = openai_chat.decode_request(orjson.loads(openai_body))
    oai_stream = upstream["openai"].stream_head + upstream["openai"].stream_tail
    ant_stream = upstream["anthropic"].stream_head + upstream["anthropic"].stream_tail

    def cold_count() -> None:
        TokenCounter().count_request(dataclasses.replace(request))

    out = [
        ("orjson.loads(Anthropic body)", timed(lambda: orjson.loads(anthropic_body))),
        (
            "anthropic.decode_request",
            timed(lambda: anthropic_codec.decode_request(data)),
        ),
        (
            "TokenCounter.count_request, warm",
            timed(lambda: counter.count_request(anthropic_codec.decode_request(data)))
            - timed(lambda: anthropic_codec.decode_request(data)),
        ),
        ("TokenCounter.count_request, cold", timed(cold_count, repeat=5)),
        (
            "decode_request_body, history cached, new last turn",
            timed(lambda: decode_request_body(bodies.anthropic.fill(next(numbers)), decode_cache))
            - timed(lambda: bodies.anthropic.fill(next(numbers))),
        ),
        ("decode_request_body, nothing cached", timed(lambda: decode_request_body(anthropic_body))),
        (
            "OpenAIAdapter.build (encode + dumps)",
            timed(lambda: openai_adapter.build(request, UPSTREAM_MODEL, stream=False)),
        ),
        (
            "OpenAIAdapter.build, history shared, new last turn",
            timed(lambda: openai_adapter.build(next(turns), UPSTREAM_MODEL, stream=False)),
        ),
        (
            "OpenAIAdapter.parse_response",
            timed(lambda: openai_adapter.parse_response(upstream["openai"].json, oai_call)),
        ),
        (
            "anthropic.encode_response (translated)",
            timed(lambda: anthropic_codec.encode_response(oai_response)),
        ),
        (
            "stream: OpenAI SSE -> Anthropic SSE, 63 events",
            timed(
                _stream_cost(
                    oai_stream, lambda: openai_adapter.stream_decoder(oai_call), anthropic_codec.encode_event
                )
            ),
        ),
        (
            "AnthropicAdapter.build (passthrough)",
            timed(lambda: anthropic_adapter.build(request, UPSTREAM_MODEL, stream=False)),
        ),
        (
            "AnthropicAdapter.parse_response",
            timed(lambda: anthropic_adapter.parse_response(upstream["anthropic"].json, ant_call)),
        ),
        (
            "anthropic.encode_response (passthrough)",
            timed(lambda: anthropic_codec.encode_response(ant_response)),
        ),
        (
            "stream: Anthropic SSE -> Anthropic SSE",
            timed(_stream_cost(ant_stream, AnthropicStreamDecoder, anthropic_codec.encode_event)),
        ),
        ("orjson.loads(OpenAI body)", timed(lambda: orjson.loads(openai_body))),
        ("openai_chat.decode_request (front)", timed(lambda: openai_chat.decode_request(oai_data))),
        (
            "OpenAIAdapter.build from OpenAI front",
            timed(lambda: openai_adapter.build(oai_request, UPSTREAM_MODEL, stream=False)),
        ),
        (
            "openai_chat.encode_response",
            timed(lambda: openai_chat.encode_response(oai_response, UPSTREAM_MODEL)),
        ),
        (
            "stream: OpenAI SSE -> OpenAI SSE",
            timed(
                _stream_cost(
                    oai_stream,
                    lambda: openai_adapter.stream_decoder(oai_call),
                    OpenAIStreamEncoder(UPSTREAM_MODEL, True).encode,
                )
            ),
        ),
        ("reference: orjson.dumps(loads(body))", timed(lambda: orjson.dumps(orjson.loads(anthropic_body)))),
    ]
    return out


def main() -> int:
    rows = steps()
    width = max(len(name) for name, _ in rows)
    print(f"{'step':<{width}}  median us")
    for name, micros in rows:
        print(f"{name:<{width}}  {micros:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
