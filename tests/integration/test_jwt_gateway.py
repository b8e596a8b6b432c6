"""Single sign-on through the real gateway (issue 14): ``server.jwt`` against a loopback JWKS server.

A token the IdP signed names the user and carries the role its groups map to: a viewer reads the
admin API, a client is refused there (403) and served on /v1. Every bad token (expired, another
issuer or audience, an unknown key, ``alg: none``, an HMAC signed with the RSA public key, broken
base64, one over ``max_token_bytes``) is a 401 on /api and /v1 in the client's envelope, and the
refusal never repeats the token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml
from aiohttp.test_utils import TestServer
from gateway_support import GatewayFactory

from ccrouter.app import create_app
from ccrouter.config import Settings
from ccrouter.config_file import load_settings
from ccrouter.testing import FakeUpstream, JwksServer, SigningKey, forge

ISSUER = "https://idp.example.test"
AUDIENCE = "ccrouter-gateway"
MAX_TOKEN = 2048
GOOD = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.rsa("idp-rsa-1")


@pytest.fixture
async def idp(key: SigningKey) -> AsyncIterator[JwksServer]:
    async with JwksServer([key]) as server:
        yield server


def _settings(
    fake_url: str, tmp_path: Path, jwks_url: str, *, min_refresh_s: float = 60.0, **server: Any
) -> Settings:
    return Settings.model_validate(
        _config(fake_url, tmp_path, jwks_url, min_refresh_s=min_refresh_s, **server)
    )


def _config(
    fake_url: str, tmp_path: Path, jwks_url: str, *, min_refresh_s: float = 60.0, **server: Any
) -> dict[str, Any]:
    return {
        "server": {
            "jwt": {
                "jwks_url": jwks_url,
                "issuer": ISSUER,
                "audience": AUDIENCE,
                "user_claim": "email",
                "team_claim": "team",
                "role_claim": "groups",
                "role_map": {"gw-viewers": "viewer", "gw-users": "client", "gw-ops": "operator"},
                "default_role": None,
                "max_token_bytes": MAX_TOKEN,
                "jwks_min_refresh_s": min_refresh_s,
            },
            **server,
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


def _claims(**extra: Any) -> dict[str, Any]:
    now = time.time()
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "u-1",
        "email": "ada@example.test",
        "team": "research",
        "groups": ["gw-users"],
        "iat": now,
        "exp": now + 600,
    }
    base.update(extra)
    return base


async def _call(
    session: aiohttp.ClientSession, url: str, path: str, token: str
) -> tuple[int, dict[str, Any]]:
    headers = {"authorization": f"Bearer {token}"}
    if path == "/api/usage":
        request = session.get(url + path, headers=headers)
    else:
        request = session.post(url + path, headers=headers, json=CHAT if "chat" in path else GOOD)
    async with request as response:
        return response.status, orjson.loads(await response.read())


async def test_a_viewer_token_reads_the_api_and_a_client_token_calls_models(
    fake: FakeUpstream, gateway: GatewayFactory, idp: JwksServer, key: SigningKey, tmp_path: Path
) -> None:
    url = await gateway(_settings(fake.url, tmp_path, idp.url))
    viewer = key.mint(_claims(groups=["gw-users", "gw-viewers"]))
    client = key.mint(_claims(sub="u-2", email="bob@example.test"))
    async with aiohttp.ClientSession() as session:
        status, body = await _call(session, url, "/api/usage", viewer)
        assert status == 200, body
        status, body = await _call(session, url, "/api/usage", client)
        assert status == 403
        assert body["error"]["type"] == "permission_error"
        assert "needs role viewer" in body["error"]["message"]
        status, body = await _call(session, url, "/v1/messages", client)
        assert status == 200, body
        assert body["type"] == "message"
        status, body = await _call(session, url, "/v1/chat/completions", client)
        assert status == 200, body
        # A token whose groups map to nothing (default_role None) is refused.
        nobody = key.mint(_claims(groups=["other"]))
        status, body = await _call(session, url, "/v1/messages", nobody)
        assert status == 401
        assert "maps to no role" in body["error"]["message"]
    # The upstream saw the two model calls; the IdP was asked once (no unknown key id yet).
    assert len(fake.requests) == 2
    assert idp.fetches == 1


async def test_bad_tokens_are_401_on_the_api_and_the_model_endpoints(
    fake: FakeUpstream, gateway: GatewayFactory, idp: JwksServer, key: SigningKey, tmp_path: Path
) -> None:
    # 24 refusals from one address: more than the brute-force throttle lets through by default.
    url = await gateway(_settings(fake.url, tmp_path, idp.url, min_refresh_s=0.3, auth_throttle_burst=100))
    viewer = _claims(groups=["gw-viewers"])
    good = key.mint(viewer)
    header, payload, signature = good.split(".")
    cases = {
        "expired": (key.mint(_claims(groups=["gw-viewers"], exp=time.time() - 3600)), "token expired"),
        "wrong issuer": (key.mint({**viewer, "iss": "https://evil.test"}), "token issuer not accepted"),
        "wrong audience": (key.mint({**viewer, "aud": "another-app"}), "token audience not accepted"),
        "unknown kid": (SigningKey.rsa("stranger").mint(viewer), "token key id unknown"),
        "alg none": (
            forge({"alg": "none", "typ": "JWT", "kid": key.kid}, viewer),
            "token algorithm not allowed",
        ),
        "hs/rs confusion": (
            forge({"alg": "HS256", "typ": "JWT", "kid": key.kid}, viewer, hmac_secret=key.public_pem()),
            "token algorithm not allowed",
        ),
        "broken base64": (f"{header[:-1]}.{payload}.{signature}", "malformed token"),
        "huge": (key.mint({**viewer, "padding": "a" * (2 * MAX_TOKEN)}), "token too large"),
    }
    assert len(cases["huge"][0]) > MAX_TOKEN
    await asyncio.sleep(0.35)  # past jwks_min_refresh_s since the start: an unknown kid may refetch
    async with aiohttp.ClientSession() as session:
        for case, (token, said) in cases.items():
            for path in ("/api/usage", "/v1/messages", "/v1/chat/completions"):
                status, body = await _call(session, url, path, token)
                assert status == 401, (case, path, body)
                error = body["error"]
                assert error["type"] == "authentication_error", (case, path, body)
                if path == "/v1/messages":
                    assert body["type"] == "error"  # Anthropic's envelope
                if path == "/v1/chat/completions":
                    assert "code" in error  # OpenAI's envelope
                assert said in error["message"], (case, path, error)
                for segment in token.split("."):
                    if len(segment) >= 8:
                        assert segment not in error["message"]
        # The good token still works after the flood of refusals.
        assert (await _call(session, url, "/api/usage", good))[0] == 200
    # Nothing refused reached the upstream; the unknown kid refetched the JWKS once, not once per
    # request (the refusal is cached, and refetches are rate limited).
    assert fake.requests == []
    assert idp.fetches == 2


async def test_a_reload_keeps_the_verifier_and_its_keys(
    fake: FakeUpstream, idp: JwksServer, key: SigningKey, tmp_path: Path
) -> None:
    path = tmp_path / "config.yaml"
    data = _config(fake.url, tmp_path, idp.url)
    await asyncio.to_thread(path.write_text, yaml.safe_dump(data, sort_keys=False))
    settings = await asyncio.to_thread(load_settings, path)
    server = TestServer(create_app(settings, config_path=path, watch=False), host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url("")).rstrip("/")
        operator = key.mint(_claims(groups=["gw-ops"]))
        async with aiohttp.ClientSession() as session:
            assert (await _call(session, url, "/api/usage", operator))[0] == 200
            data["router"]["background"] = "up,claude-sonnet-4-6"
            await asyncio.to_thread(path.write_text, yaml.safe_dump(data, sort_keys=False))
            headers = {"authorization": f"Bearer {operator}"}
            async with session.post(url + "/api/config/reload", headers=headers) as response:
                result = await response.json()
            assert response.status == 200, result
            assert result["status"] == "reloaded"
            # The new configuration verifies with the same keys: the IdP is not asked again.
            assert (await _call(session, url, "/api/usage", operator))[0] == 200
            assert (await _call(session, url, "/v1/messages", operator))[0] == 200
    finally:
        await server.close()
    assert idp.fetches == 1


async def test_the_ledger_names_the_tokens_subject_user_and_team(
    fake: FakeUpstream, gateway: GatewayFactory, idp: JwksServer, key: SigningKey, tmp_path: Path
) -> None:
    url = await gateway(_settings(fake.url, tmp_path, idp.url))
    client = key.mint(_claims(sub="u-7", email="cy@example.test", team="web"))
    viewer = key.mint(_claims(groups=["gw-viewers"]))
    async with aiohttp.ClientSession() as session:
        assert (await _call(session, url, "/v1/messages", client))[0] == 200
        await asyncio.sleep(0.2)  # the ledger writer's interval
        headers = {"authorization": f"Bearer {viewer}"}
        async with session.get(url + "/api/usage?by=key,user,team", headers=headers) as response:
            usage = orjson.loads(await response.read())
    assert [(r["key"], r["user"], r["team"]) for r in usage["rows"]] == [
        ("jwt:u-7", "cy@example.test", "web")
    ]
