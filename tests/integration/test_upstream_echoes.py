"""An upstream that echoes the start of our key or a masked form of it (as providers print keys in
their errors) leaks neither to the client nor to the log."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import aiohttp
import orjson
import pytest
import structlog
from gateway_support import GatewayFactory

from ccrouter.config import Settings
from ccrouter.telemetry import setup_logging
from ccrouter.testing import FakeUpstream, Fault

ANTHROPIC_KEY = "sk-ant-SECRETKEY0123456789abcdefvvvv"
GEMINI_KEY = "AIzaSyQ9r8s7t6u5v4w3x2y1z0ABCDEFGHwxyz"
ECHOES = {
    "anthropic": ["sk-ant-SECRE", "sk-ant***vvvv", "sk-ant-***...vvvv", "sk-ant-SECRETKEY01"],
    "gemini": ["AIzaSyQ9r", "AIzaSy...wxyz", "AIzaSyQ9r8s7****wxyz"],
}


def _config(fake_url: str) -> dict[str, Any]:
    return {
        "providers": [
            {
                "name": "ant",
                "type": "anthropic",
                "base_url": fake_url,
                "api_key": ANTHROPIC_KEY,
                "models": ["claude-sonnet-4-6"],
            },
            {
                "name": "gem",
                "type": "gemini",
                "base_url": fake_url + "/v1beta",
                "api_key": GEMINI_KEY,
                "models": ["gemini-2.5-flash"],
            },
        ],
        "router": {"default": "ant,claude-sonnet-4-6"},
        "routing": {"auto_fallback": "off", "auth_cooldown_s": 0.001},
        "logging": {"format": "json"},
    }


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    level = root.level
    out = io.StringIO()
    handler = setup_logging(Settings.model_validate(_config("http://127.0.0.1:1")), stream=out)
    yield out
    root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.mark.parametrize(
    ("wire", "model"), [("anthropic", "ant,claude-sonnet-4-6"), ("gemini", "gem,gemini-2.5-flash")]
)
@pytest.mark.parametrize("stream", [False, True])
async def test_echoed_key_starts_and_masks_are_redacted(
    captured: io.StringIO, fake: FakeUpstream, gateway: GatewayFactory, wire: str, model: str, stream: bool
) -> None:
    url = await gateway(Settings.model_validate(_config(fake.url)))
    message = "invalid api key " + ", ".join(ECHOES[wire])
    fake.script(Fault("status", status=401, body=orjson.dumps({"error": {"message": message}})))
    body = {"model": model, "max_tokens": 5, "stream": stream, "messages": [{"role": "user", "content": "x"}]}
    async with aiohttp.ClientSession() as session, session.post(url + "/v1/messages", json=body) as response:
        text = await response.text()
    assert response.status == 401
    assert "[redacted]" in text
    logged = captured.getvalue()
    assert "invalid api key" in logged
    for echo in ECHOES[wire]:
        assert echo not in text
        assert echo not in logged
