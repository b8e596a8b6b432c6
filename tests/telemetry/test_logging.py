"""Structured logs: JSON lines, stdlib records in the same format, request lines, secret scrubbing."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
import structlog
from aiohttp.test_utils import TestServer

from ccrouter.app import create_app
from ccrouter.config import Settings
from ccrouter.exchange import Attempt, Exchange
from ccrouter.messages import Usage
from ccrouter.telemetry import Redactor, RequestLog, secrets_of

PROVIDER_KEY = "sk-provider-0123456789abcdef"
CLIENT_KEY = "ck-client-0123456789abcdef"
ADMIN = "admin-token-0123456789"

Capture = Callable[..., io.StringIO]


def _settings(**logging_config: Any) -> Settings:
    return Settings.model_validate(
        {
            "server": {
                "api_keys": [CLIENT_KEY, {"name": "team", "key": "named-key-0123456789"}],
                "admin_token": ADMIN,
            },
            "providers": [
                {
                    "name": "up",
                    "type": "anthropic",
                    "api_key": PROVIDER_KEY,
                    "api_keys": ["sk-second-0123456789"],
                },
                {"name": "local", "type": "openai", "base_url": "http://127.0.0.1:1/v1", "api_key": "ollama"},
            ],
            "router": {"default": "up,claude-sonnet-4-6"},
            "store": {"url": "postgresql://user:pg-password-123@127.0.0.1/test"},
            "logging": logging_config,
        }
    )


def _lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


def test_secrets_of_collects_every_configured_secret() -> None:
    assert secrets_of(_settings()) == {
        PROVIDER_KEY,
        "sk-second-0123456789",
        "ollama",
        CLIENT_KEY,
        "named-key-0123456789",
        ADMIN,
        "postgresql://user:pg-password-123@127.0.0.1/test",
        "pg-password-123",
    }


def test_redactor_replaces_secrets_but_not_short_placeholders() -> None:
    redactor = Redactor({PROVIDER_KEY, "ollama", PROVIDER_KEY + "-longer"})
    assert (
        redactor.text(f"a {PROVIDER_KEY}-longer b {PROVIDER_KEY} ollama")
        == "a [redacted] b [redacted] ollama"
    )
    assert redactor.value({"k": [PROVIDER_KEY, 3]}) == {"k": ["[redacted]", 3]}
    assert not Redactor(["short"])


def test_json_lines_with_stdlib_records_and_scrubbing(log_capture: Capture) -> None:
    out = log_capture(_settings(format="json"))
    logging.getLogger("aiohttp.server").warning("upstream said: bad key %s", PROVIDER_KEY)
    structlog.stdlib.get_logger("ccrouter.x").info("event", detail={"echo": ADMIN}, n=3)
    logging.getLogger("ccrouter.y").debug("not shown at info")
    first, second = _lines(out)
    assert first["event"] == "upstream said: bad key [redacted]"
    assert (first["level"], first["logger"]) == ("warning", "aiohttp.server")
    assert second["detail"] == {"echo": "[redacted]"}
    assert (second["event"], second["n"], second["level"]) == ("event", 3, "info")
    assert "timestamp" in second
    assert PROVIDER_KEY not in out.getvalue()
    assert ADMIN not in out.getvalue()


def test_exceptions_are_scrubbed_in_both_formats(log_capture: Capture) -> None:
    for fmt in ("json", "console"):
        out = log_capture(_settings(format=fmt))
        try:
            raise ValueError(f"boom {CLIENT_KEY}")
        except ValueError:
            logging.getLogger("ccrouter.z").exception("failed")
        text = out.getvalue()
        assert "failed" in text
        assert "ValueError" in text
        assert CLIENT_KEY not in text
        assert "[redacted]" in text


def test_level_from_logging_section_or_server(log_capture: Capture) -> None:
    out = log_capture(_settings(format="json", level="debug"))
    logging.getLogger("ccrouter.y").debug("shown")
    assert [line["event"] for line in _lines(out)] == ["shown"]
    assert logging.getLogger().level == logging.DEBUG


def test_request_line_carries_decision_usage_cost_and_request_id(log_capture: Capture) -> None:
    out = log_capture(_settings(format="json"))
    exchange = Exchange(request_id="req-1", endpoint="messages")
    exchange.scenario, exchange.provider, exchange.model = "think", "up", "claude-sonnet-4-6"
    exchange.route_reason = "thinking requested"
    exchange.attempts = [Attempt("up", "claude-sonnet-4-6", None, None, 0.5)]
    exchange.usage = Usage(input_tokens=10, output_tokens=4, cache_creation_input_tokens=2)
    exchange.cost_usd = 0.0012
    exchange.status, exchange.duration_s, exchange.first_byte_s = 200, 0.51, 0.1
    with structlog.contextvars.bound_contextvars(request_id="req-1"):
        logging.getLogger("ccrouter.budgets").warning("inside the request")
        RequestLog().on_exchange(exchange)
    inner, line = _lines(out)
    assert inner["request_id"] == "req-1"
    assert line["event"] == "request"
    assert line["level"] == "info"
    assert {k: line[k] for k in ("request_id", "scenario", "provider", "model", "reason", "status")} == {
        "request_id": "req-1",
        "scenario": "think",
        "provider": "up",
        "model": "claude-sonnet-4-6",
        "reason": "thinking requested",
        "status": 200,
    }
    assert line["usage"] == {"input": 10, "output": 4, "cache_read": 0, "cache_write": 2, "estimated": False}
    assert (line["cost_usd"], line["duration_ms"], line["first_byte_ms"]) == (0.0012, 510.0, 100.0)
    assert line["attempts"] == [
        {
            "provider": "up",
            "model": "claude-sonnet-4-6",
            "status": None,
            "error_type": None,
            "duration_ms": 500.0,
        }
    ]


def test_request_line_level_follows_the_outcome(log_capture: Capture) -> None:
    out = log_capture(_settings(format="json"))
    for status, error in ((404, "not_found_error"), (502, "api_error"), (200, "overloaded_error")):
        exchange = Exchange(request_id="r", endpoint="messages")
        exchange.status, exchange.error_type, exchange.error_message = status, error, f"echo {PROVIDER_KEY}"
        RequestLog().on_exchange(exchange)
    lines = _lines(out)
    assert [line["level"] for line in lines] == ["warning", "error", "error"]
    assert lines[1]["error"] == "echo [redacted]"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_console_format_in_a_terminal(log_capture: Capture) -> None:
    out = _Terminal()
    log_capture(_settings(), stream=out)
    logging.getLogger("ccrouter.t").warning("hello %s", ADMIN)
    text = out.getvalue()
    assert not text.startswith("{")
    assert "hello [redacted]" in text
    assert "ccrouter.t" in text


async def _one_request(settings: Settings) -> None:
    server = TestServer(create_app(settings), host="127.0.0.1", port=0)
    await server.start_server()
    body = {"model": "sim-model", "max_tokens": 8, "messages": [{"role": "user", "content": "PROMPT-TEXT"}]}
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                server.make_url("/v1/messages"), json=body, headers={"x-request-id": "given-id"}
            ) as response,
        ):
            assert response.status == 200
            assert response.headers["x-request-id"] == "given-id"
    finally:
        await server.close()


def _simulated(**logging_config: Any) -> Settings:
    return Settings.model_validate(
        {
            "server": {"log_level": "debug"},
            "providers": [{"name": "sim", "type": "simulated", "models": ["sim-model"]}],
            "router": {"default": "sim,sim-model"},
            "logging": {"format": "json", **logging_config},
            "alerts": {"enabled": False},
        }
    )


async def test_bodies_only_when_asked(log_capture: Capture) -> None:
    quiet = log_capture(_simulated())
    await _one_request(_simulated())
    assert "PROMPT-TEXT" not in quiet.getvalue()
    (line,) = [line for line in _lines(quiet) if line["event"] == "request"]
    assert line["request_id"] == "given-id"
    loud = log_capture(_simulated(bodies=True))
    await _one_request(_simulated(bodies=True))
    bodies = [line for line in _lines(loud) if line["logger"] == "ccrouter.bodies"]
    assert [line["event"] for line in bodies] == ["request body", "response body"]
    assert "PROMPT-TEXT" in bodies[0]["body"]
    assert all(line["request_id"] == "given-id" for line in bodies)
