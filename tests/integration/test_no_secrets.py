"""The key scan: run the gateway with provider keys, client keys and an admin token, drive successes,
upstream errors whose bodies echo our provider keys back (a malicious or careless upstream), auth
failures and a configuration error; then no secret may appear in any log line, response body or
header, /metrics, /health, /health/providers or /api/usage."""

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
from ccrouter.config_file import settings_from_data
from ccrouter.errors import ConfigError
from ccrouter.telemetry import setup_logging
from ccrouter.testing import FakeUpstream, Fault

ANTHROPIC_KEYS = ("sk-ant-PRIMARY-0123456789abcdef", "sk-ant-SECOND-0123456789abcdef")
OPENAI_KEY = "sk-proj-OPENAI-0123456789abcdef"
CLIENT_PLAIN = "ck-plain-0123456789abcdef"
CLIENT_NAMED = "ck-named-0123456789abcdef"
ADMIN = "admin-token-0123456789abcdef"
SECRETS = (*ANTHROPIC_KEYS, OPENAI_KEY, CLIENT_PLAIN, CLIENT_NAMED, ADMIN)
MODEL = "claude-sonnet-4-6"


def _config(fake_url: str) -> dict[str, Any]:
    return {
        "server": {
            "api_keys": [CLIENT_PLAIN, {"name": "team", "key": CLIENT_NAMED, "user": "ana"}],
            "admin_token": ADMIN,
            "log_level": "debug",
        },
        "providers": [
            {
                "name": "ant",
                "type": "anthropic",
                "base_url": fake_url,
                "api_key": ANTHROPIC_KEYS[0],
                "api_keys": [ANTHROPIC_KEYS[1]],
                "models": [MODEL],
            },
            {
                "name": "oa",
                "type": "openai",
                "base_url": fake_url + "/v1",
                "api_key": OPENAI_KEY,
                "models": ["gpt-test"],
            },
        ],
        "router": {"default": f"ant,{MODEL}"},
        # A credential answering 401 is normally set aside for an hour; here every round reaches the fake.
        "routing": {"auto_fallback": "off", "auth_cooldown_s": 0.001, "backoff_base_s": 0.001},
        "logging": {"format": "json"},
    }


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Everything logged while the test runs (structlog and stdlib), as the gateway would print it."""
    root = logging.getLogger()
    level = root.level
    out = io.StringIO()
    handler = setup_logging(Settings.model_validate(_config("http://127.0.0.1:1")), stream=out)
    yield out
    root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


def _echo_anthropic(status: int) -> Fault:
    message = f"invalid x-api-key {ANTHROPIC_KEYS[0]} (also tried {ANTHROPIC_KEYS[1]}, {OPENAI_KEY})"
    body = orjson.dumps({"type": "error", "error": {"type": "authentication_error", "message": message}})
    return Fault("status", status=status, body=body)


def _echo_openai(status: int) -> Fault:
    message = f"Incorrect API key provided: {OPENAI_KEY}. You can find your API key at ..."
    body = orjson.dumps(
        {"error": {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}}
    )
    return Fault("status", status=status, body=body)


class Scan:
    """Every byte the gateway sent back, plus what it logged."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def call(
        self, session: aiohttp.ClientSession, method: str, url: str, *, key: str | None = None, **kw: Any
    ) -> int:
        headers = {"x-api-key": key} if key else {}
        if kw.pop("bearer", None):
            headers = {"authorization": f"Bearer {key}"}
        async with session.request(method, url, headers=headers, **kw) as response:
            self.seen.append(await response.text())
            self.seen.append(repr(dict(response.headers)))
            return response.status


async def test_no_secret_anywhere(captured: io.StringIO, fake: FakeUpstream, gateway: GatewayFactory) -> None:
    url = await gateway(Settings.model_validate(_config(fake.url)))
    body = {"model": MODEL, "max_tokens": 32, "messages": [{"role": "user", "content": "hello"}]}
    chat = {"model": "oa,gpt-test", "messages": [{"role": "user", "content": "hello"}]}
    scan = Scan()
    statuses = []
    async with aiohttp.ClientSession() as s:
        statuses.append(await scan.call(s, "POST", url + "/v1/messages", key=CLIENT_PLAIN, json=body))
        stream = {**body, "stream": True}
        statuses.append(
            await scan.call(s, "POST", url + "/v1/messages", key=CLIENT_NAMED, bearer=True, json=stream)
        )
        for status in (401, 500, 400):
            fake.reset()
            fake.script(_echo_anthropic(status), _echo_anthropic(status))
            statuses.append(await scan.call(s, "POST", url + "/v1/messages", key=CLIENT_PLAIN, json=body))
            fake.reset()
            fake.script(_echo_anthropic(status), _echo_anthropic(status))
            statuses.append(await scan.call(s, "POST", url + "/v1/messages", key=CLIENT_PLAIN, json=stream))
        for status in (401, 429):
            fake.reset()
            fake.script(_echo_openai(status), _echo_openai(status))
            statuses.append(
                await scan.call(s, "POST", url + "/v1/chat/completions", key=CLIENT_NAMED, json=chat)
            )
        # Misrouted requests: an unknown provider, and a key pasted where the model goes.
        for model in ("ghost,model", OPENAI_KEY):
            misrouted = {**body, "model": model}
            statuses.append(
                await scan.call(s, "POST", url + "/v1/messages", key=CLIENT_PLAIN, json=misrouted)
            )
        statuses.append(await scan.call(s, "POST", url + "/v1/messages", json=body))
        statuses.append(await scan.call(s, "POST", url + "/v1/messages", key=CLIENT_PLAIN + "x", json=body))
        statuses.append(await scan.call(s, "GET", url + "/api/usage", key=CLIENT_PLAIN, bearer=True))
        statuses.append(await scan.call(s, "GET", url + "/api/usage", key=ADMIN + "x", bearer=True))
        for path in ("/metrics", "/health", "/health/providers", "/v1/models"):
            statuses.append(await scan.call(s, "GET", url + path, key=CLIENT_PLAIN))
        for query in ("?by=provider,model,key,user,session", "?by=key,user&format=csv"):
            statuses.append(await scan.call(s, "GET", url + "/api/usage" + query, key=ADMIN, bearer=True))
    # The scan covered successes, upstream errors, auth failures and the observability endpoints.
    assert statuses[:2] == [200, 200]
    assert all(status >= 400 for status in statuses[2:12]), statuses
    assert statuses[12:16] == [401, 401, 403, 401]
    assert statuses[16:] == [200] * 6
    assert any("[redacted]" in text for text in scan.seen), "the echoed keys never reached a response"
    # A configuration error names the problem, never a key.
    broken = _config(fake.url)
    broken["router"]["default"] = "nope,model"
    broken["server"]["api_keys"].append({"name": "bad name!", "key": "ck-bad-0123456789abcdef"})
    with pytest.raises(ConfigError) as error:
        settings_from_data(broken, source="config.yaml")
    logging.getLogger("ccrouter").error("%s", error.value.message)
    scan.seen.append(error.value.message)
    log_text = captured.getvalue()
    lines = [orjson.loads(line) for line in log_text.splitlines()]
    requests = [line for line in lines if line["event"] == "request"]
    # The /v1/ requests, one line each, except the two refused by authentication: those are
    # counted in ccr_auth_failures_total, never logged or recorded per request.
    assert len(requests) == 13
    echoed = [line["error"] for line in requests if line.get("attempts") and line["status"] == 401]
    assert echoed
    assert all("[redacted]" in message for message in echoed), echoed
    assert len(log_text.splitlines()) > 20
    for where, text in [("log", log_text), *(("response", t) for t in scan.seen)]:
        for secret in (*SECRETS, "ck-bad-0123456789abcdef"):
            assert secret not in text, f"{secret} leaked in a {where}: {text[:400]}"
