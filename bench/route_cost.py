"""In-process cost of ``Router.route`` on a Claude-Code-sized request whose history is shared.

    .venv/bin/python bench/route_cost.py

Each request is ``claude_code_request()`` plus a new last user text, decoded through one
``DecodeCache`` (so its history objects are the ones the counter saw before) and routed once; the
table shows the median microseconds of ``route`` over ``REPEAT`` requests, after a warm-up.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import orjson

from ccrouter.catalog import Catalog
from ccrouter.codecs.anthropic.body import decode_request_body
from ccrouter.codecs.body import DecodeCache
from ccrouter.config import Settings
from ccrouter.messages import MessagesRequest
from ccrouter.routing.scenarios import Router
from ccrouter.routing.session import SessionUsage
from ccrouter.testing.claude_code import claude_code_request
from ccrouter.tokens import TokenCounter

REPEAT = 300
WARMUP = 10


def _settings() -> Settings:
    return Settings.model_validate(
        {
            "providers": [
                {"name": "anthropic", "type": "anthropic", "models": ["claude-sonnet-4-5"]},
                {"name": "gemini", "type": "gemini", "models": ["gemini-2.5-pro", "gemini-2.5-flash"]},
            ],
            "router": {"default": "anthropic,claude-sonnet-4-5", "long_context": "gemini,gemini-2.5-pro"},
        }
    )


def _requests(count: int, text: str) -> list[MessagesRequest]:
    cache = DecodeCache()
    out = []
    for index in range(count):
        body = claude_code_request()
        body["messages"].append({"role": "user", "content": [{"type": "text", "text": text % index}]})
        out.append(decode_request_body(orjson.dumps(body), cache))
    return out


async def _route_cost(text: str) -> tuple[float, int | None]:
    counter = TokenCounter()
    await counter.warm()
    router = Router(_settings(), Catalog.load(), counter, SessionUsage())
    requests = _requests(REPEAT + WARMUP + 1, text)
    await router.route(requests[0], session_id=None)  # the history, counted once
    samples = []
    decision = None
    for index, request in enumerate(requests[1:]):
        started = time.perf_counter_ns()
        decision = await router.route(request, session_id="s1")
        if index >= WARMUP:
            samples.append(time.perf_counter_ns() - started)
    assert decision is not None
    return statistics.median(samples) / 1000, decision.tokens


def main() -> None:
    for label, text in (
        ("new 15-byte text", "next step %05d"),
        ("new 2 KB text", "please look at this again %05d " + "and check the output " * 100),
    ):
        cost, tokens = asyncio.run(_route_cost(text))
        print(f"Router.route, history shared, {label:<18} {cost:8.1f} us   (tokens {tokens})")


if __name__ == "__main__":
    main()
