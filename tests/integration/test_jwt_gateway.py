"""Single sign-on tokens through the real app (issue 14): a token signed by the identity provider's
JWKS key acts with the role its claims map to; every kind of bad token is a 401 on /api and /v1, in
the client's envelope."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from gateway_support import GatewayFactory

from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream
from ccrouter.testing.jwks import JwksServer, SigningKey, b64url, forge

ISSUER = "https://login.example.test/"
GOOD = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def idp() -> AsyncIterator[tuple[JwksServer, SigningKey]]:
    key = SigningKey.rsa("idp-1")
    async with JwksServer([key]) as server:
        yield server, key


def _settings(fake_url: str, jwks_url: str, tmp_path: Path) -> Settings:
    return Settings.model_validate(
        {
            "server": {
                "auth_throttle_burst": 100,  # every bad token below gets its own 401, none the throttle's
                "jwt": {
                    "jwks_url": jwks_url,
                    "issuer": ISSUER,
                    "audience": "ccrouter",
                    "user_claim": "email",
                    "team_claim": "team",
                    "role_claim": "groups",
                    "role_map": {"eng-leads": "viewer", "ops": "operator"},
                },
            },
            "providers": [
                {
                    "name": "up",
                    "type": "anthropic",
                    "base_url": fake_url,
                    "api_key": "sk-upstream-secret",
                    "models": ["claude-sonnet-4-6"],
                }
            ],
            "router": {"default": "up,claude-sonnet-4-6"},
            "store": {"url": f"sqlite:///{tmp_path / 'usage.db'}", "flush_interval_s": 0.05},
        }
    )


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": "ccrouter",
        "sub": "u-123",
        "email": "ana@example.test",
        "team": "web",
        "groups": ["eng-leads"],
        "iat": now,
        "exp": now + 600,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


async def _call(
    session: aiohttp.ClientSession, method: str, url: str, token: str, body: Any = None
) -> tuple[int, Any]:
    headers = {"authorization": f"Bearer {token}"}
    async with session.request(method, url, json=body, headers=headers) as response:
        return response.status, orjson.loads(await response.read())


async def test_a_viewer_token_reads_usage_and_a_client_token_calls_models(
    fake: FakeUpstream, gateway: GatewayFactory, idp: tuple[JwksServer, SigningKey], tmp_path: Path
) -> None:
    server, key = idp
    url = await gateway(_settings(fake.url, server.url, tmp_path))
    viewer = key.mint(_claims(), kid="idp-1")
    client = key.mint(_claims(groups=["someone-else"], sub="u-456"), kid="idp-1")
    async with aiohttp.ClientSession() as s:
        assert (await _call(s, "GET", url + "/api/usage", viewer))[0] == 200
        status, body = await _call(s, "GET", url + "/api/usage", client)
        assert status == 403
        assert "has role client" in body["error"]["message"]
        assert (await _call(s, "POST", url + "/api/keys", viewer, {"name": "x"}))[0] == 403
        assert (await _call(s, "POST", url + "/v1/messages", client, GOOD))[0] == 200
        status, usage = await _call(s, "GET", url + "/api/usage?by=key,user,team", viewer)
    assert status == 200
    # The ledger names the token's subject, user and team.
    await_rows = usage["rows"] if "rows" in usage else usage["data"]
    assert {"key": "jwt:u-456", "user": "ana@example.test", "team": "web"}.items() <= await_rows[0].items()


async def test_bad_tokens_are_401_in_each_envelope(
    fake: FakeUpstream, gateway: GatewayFactory, idp: tuple[JwksServer, SigningKey], tmp_path: Path
) -> None:
    server, key = idp
    url = await gateway(_settings(fake.url, server.url, tmp_path))
    stranger = SigningKey.rsa("idp-1")  # the same kid, another key
    header = {"alg": "HS256", "typ": "JWT", "kid": "idp-1"}
    cases = {
        "expired": key.mint(_claims(exp=int(time.time()) - 3600), kid="idp-1"),
        "wrong issuer": key.mint(_claims(iss="https://evil.example.test/"), kid="idp-1"),
        "wrong audience": key.mint(_claims(aud="someone-else"), kid="idp-1"),
        "unknown kid": key.mint(_claims(), kid="idp-9"),
        "other key": stranger.mint(_claims(), kid="idp-1"),
        "alg none": forge({"alg": "none", "typ": "JWT", "kid": "idp-1"}, _claims()),
        "hs/rs confusion": forge(header, _claims(), hmac_secret=key.public_pem()),
        "broken base64": "eyJhbGciOiJSUzI1NiJ9.%%%%.abc",
        "huge": b64url(b'{"alg":"RS256"}') + "." + "A" * 7000 + ".sig",
    }
    async with aiohttp.ClientSession() as s:
        for name, token in cases.items():
            for method, path, body in (
                ("GET", "/api/usage", None),
                ("POST", "/v1/messages", GOOD),
                ("POST", "/v1/chat/completions", CHAT),
            ):
                status, answer = await _call(s, method, url + path, token, body)
                assert status == 401, (name, path, answer)
                if path == "/v1/chat/completions":
                    assert answer["error"]["code"] == "authentication_error", answer  # OpenAI's envelope
                    assert "param" in answer["error"]
                else:
                    assert answer["type"] == "error"  # Anthropic's
                    assert answer["error"]["type"] == "authentication_error"
                assert token not in answer["error"]["message"]
