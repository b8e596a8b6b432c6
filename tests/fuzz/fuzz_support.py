"""What the fuzz tests share: the gateway they drive from Hypothesis's thread, and the rule they check.

The gateway has one provider per wire format, all pointing at the same fake, so a body's ``model``
picks the encoder an example goes through.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import orjson
from hypothesis import HealthCheck, settings

from ccrouter.config import Settings

T = TypeVar("T")

# Examples per fuzz test: a few hundred in CI; CCROUTER_FUZZ_EXAMPLES=20000 to run it long by hand.
EXAMPLES = int(os.environ.get("CCROUTER_FUZZ_EXAMPLES", "150"))
settings.register_profile(
    "ccrouter-fuzz",
    max_examples=EXAMPLES,
    derandomize=True,  # the same examples every run: CI stays reproducible
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)

# ``provider,model`` routes, one per wire format: a fuzzed body's model field names one of them.
ROUTES = ["anthropic-up,claude-sonnet-4-6", "openai-up,gpt-test", "gemini-up,gemini-2.5-flash"]
_WIRES = {
    "anthropic": ("", "claude-sonnet-4-6"),
    "openai": ("/v1", "gpt-test"),
    "gemini": ("/v1beta", "gemini-2.5-flash"),
}

MESSAGES = "/v1/messages"
COUNT = "/v1/messages/count_tokens"
CHAT = "/v1/chat/completions"
GOOD_ANTHROPIC = orjson.dumps(
    {"model": ROUTES[0], "max_tokens": 20, "messages": [{"role": "user", "content": "still there?"}]}
)
GOOD_OPENAI = orjson.dumps({"model": ROUTES[1], "messages": [{"role": "user", "content": "still there?"}]})


def gateway_settings(fake_url: str) -> Settings:
    return Settings.model_validate(
        {
            "providers": [
                {
                    "name": f"{wire}-up",
                    "type": wire,
                    "base_url": fake_url + suffix,
                    "api_key": "sk-fuzz-secret-key",
                    "models": [model],
                }
                for wire, (suffix, model) in _WIRES.items()
            ],
            "router": {"default": ROUTES[0]},
        }
    )


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes


class Gateway:
    """Posts to the gateway from the test's thread; the server runs on ``loop`` in another."""

    def __init__(self, loop: asyncio.AbstractEventLoop, url: str, session: aiohttp.ClientSession) -> None:
        self.loop = loop
        self.url = url
        self.session = session

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout=30)

    def post(self, path: str, body: bytes) -> Answer:
        return self.run(self._post(path, body))

    async def _post(self, path: str, body: bytes) -> Answer:
        headers = {"content-type": "application/json"}
        async with self.session.post(self.url + path, data=body, headers=headers) as response:
            return Answer(response.status, response.content_type, await response.read())


def check(gateway: Gateway, path: str, body: bytes) -> Answer:
    """The rule every client input must keep: no 5xx; an error is JSON in the client's envelope; the
    gateway still answers a valid request afterwards."""
    answer = gateway.post(path, body)
    assert answer.status < 500, (answer.status, answer.body[:300], body[:300])
    if answer.status >= 400:
        assert answer.content_type == "application/json", answer
        error = orjson.loads(answer.body)
        assert isinstance(error, dict), error
        details = error.get("error")
        assert isinstance(details, dict), error
        assert isinstance(details.get("message"), str), error
        assert isinstance(details.get("type"), str), error
        if path == CHAT:
            assert "type" not in error, error  # OpenAI's envelope is {"error": {...}} only
        else:
            assert error.get("type") == "error", error
    good = GOOD_OPENAI if path == CHAT else GOOD_ANTHROPIC
    after = gateway.post(CHAT if path == CHAT else MESSAGES, good)
    assert after.status == 200, (after.status, after.body[:300], body[:300])
    return answer
