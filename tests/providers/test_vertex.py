"""The Vertex AI provider's pure parts (URLs, publishers, the Claude body) and its token refresher,
against the shipped fake Google token endpoint (real google-auth service-account credentials)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from ccrouter.codecs.anthropic import codec
from ccrouter.config import ProviderConfig
from ccrouter.errors import ConfigError, UpstreamError
from ccrouter.providers.google_tokens import GoogleTokens, StaticToken, load_credentials
from ccrouter.providers.vertex import (
    AnthropicVertexAdapter,
    endpoint_base,
    model_url,
    open_vertex,
    publisher_for,
)
from ccrouter.testing import FakeGoogleAuth


def test_the_endpoint_base_per_region() -> None:
    assert endpoint_base("us-east5") == "https://us-east5-aiplatform.googleapis.com"
    assert endpoint_base("global") == "https://aiplatform.googleapis.com"
    assert endpoint_base("global", "http://127.0.0.1:9/") == "http://127.0.0.1:9"
    assert endpoint_base("europe-west1", "http://127.0.0.1:9/v1") == "http://127.0.0.1:9"


def test_model_urls_per_publisher() -> None:
    base = "https://us-east5-aiplatform.googleapis.com"
    prefix = f"{base}/v1/projects/p-1/locations/us-east5/publishers"
    claude = "claude-sonnet-4-5@20250929"
    assert model_url(base, "p-1", "us-east5", "anthropic", claude, stream=False) == (
        f"{prefix}/anthropic/models/claude-sonnet-4-5@20250929:rawPredict"
    )
    assert model_url(base, "p-1", "us-east5", "anthropic", claude, stream=True) == (
        f"{prefix}/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict"
    )
    assert model_url(base, "p-1", "us-east5", "google", "gemini-2.5-pro", stream=False) == (
        f"{prefix}/google/models/gemini-2.5-pro:generateContent"
    )
    assert model_url(base, "p-1", "us-east5", "google", "gemini-2.5-pro", stream=True) == (
        f"{prefix}/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    )
    # A name that is not a path segment is escaped, never a way to another URL.
    assert model_url(base, "p", "r", "google", "../x?y", stream=False).endswith(
        "/models/..%2Fx%3Fy:generateContent"
    )


def test_the_publisher_follows_the_model_name_unless_overridden() -> None:
    assert publisher_for("claude-opus-4-1@20250805", {}) == "anthropic"
    assert publisher_for("gemini-2.5-flash", {}) == "google"
    assert publisher_for("my-tuned-claude", {"my-tuned-claude": "anthropic"}) == "anthropic"
    assert publisher_for("claude-lookalike", {"claude-lookalike": "google"}) == "google"


def _config(**fields: object) -> ProviderConfig:
    return ProviderConfig.model_validate({"name": "vx", "type": "vertex", "project": "p-1", **fields})


def test_a_vertex_provider_needs_a_project() -> None:
    with pytest.raises(ValueError, match="needs project"):
        ProviderConfig.model_validate({"name": "vx", "type": "vertex"})


def test_the_claude_body_is_anthropic_s_without_model_with_the_vertex_version() -> None:
    adapter = AnthropicVertexAdapter(_config(headers={"x-extra": "1"}), "http://h", "us-east5")
    request = codec.decode_request(
        {"model": "claude-x", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    )
    request.betas = "interleaved-thinking-2025-05-14"
    call = adapter.build(request, "claude-sonnet-4-5@20250929", stream=True)
    body = orjson.loads(call.body)
    assert "model" not in body
    assert body["anthropic_version"] == "vertex-2023-10-16"
    assert body["stream"] is True
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert call.url.endswith("/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict")
    assert call.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert call.headers["x-extra"] == "1"
    assert "anthropic-version" not in call.headers  # the body carries it on Vertex


def test_error_messages_of_both_envelopes() -> None:
    adapter = AnthropicVertexAdapter(_config(), "http://h", "global")
    google = orjson.dumps([{"error": {"code": 403, "message": "denied", "status": "PERMISSION_DENIED"}}])
    assert adapter.error_message(403, google) == "PERMISSION_DENIED: denied"
    anthropic = orjson.dumps(
        {"type": "error", "error": {"type": "x", "message": "prompt is too long: 9 > 8"}}
    )
    assert adapter.error_message(400, anthropic) == "prompt is too long: 9 > 8"
    assert adapter.error_message(500, b"") == "HTTP 500 with an empty body"


# -- the token refresher -----------------------------------------------------------------------


@pytest.fixture
async def auth() -> AsyncIterator[FakeGoogleAuth]:
    async with FakeGoogleAuth(expires_in=3600) as server:
        yield server


async def _key_file(auth: FakeGoogleAuth, tmp_path: Path) -> Path:
    path = tmp_path / "sa.json"
    await asyncio.to_thread(path.write_bytes, orjson.dumps(auth.service_account()))
    return path


async def _tokens(auth: FakeGoogleAuth, tmp_path: Path, **kwargs: float) -> GoogleTokens:
    path = await _key_file(auth, tmp_path)
    return GoogleTokens("vx", lambda: load_credentials(str(path)), **kwargs)


async def test_a_token_is_exchanged_once_and_reused_while_fresh(auth: FakeGoogleAuth, tmp_path: Path) -> None:
    tokens = await _tokens(auth, tmp_path)
    first = await tokens.token()
    assert first.startswith("ya29.fake-")
    assert auth.valid(first)
    assert await tokens.token() == first
    assert auth.exchanges == 1
    assert tokens.current == first
    assert first not in repr(tokens)


async def test_concurrent_callers_share_one_refresh(auth: FakeGoogleAuth, tmp_path: Path) -> None:
    tokens = await _tokens(auth, tmp_path)
    got = await asyncio.gather(*(tokens.token() for _ in range(20)))
    assert len(set(got)) == 1
    assert auth.exchanges == 1
    assert tokens.refreshes == 1


async def test_the_token_is_refreshed_before_it_expires(auth: FakeGoogleAuth, tmp_path: Path) -> None:
    auth.expires_in = 2.0  # fresh for its first half (a short life: min(ahead, lifetime / 2))
    tokens = await _tokens(auth, tmp_path)
    first = await tokens.token()
    await asyncio.sleep(0.3)
    assert await tokens.token() == first
    await asyncio.sleep(0.9)
    second = await tokens.token()
    assert second != first
    assert auth.valid(first), "refreshed while the old token was still good"
    assert auth.exchanges == 2


async def test_the_margin_is_five_minutes_of_a_long_token(auth: FakeGoogleAuth, tmp_path: Path) -> None:
    now = [0.0]
    tokens = await _tokens(auth, tmp_path, clock=lambda: now[0])
    first = await tokens.token()
    now[0] = 3600 - 301
    assert await tokens.token() == first
    now[0] = 3600 - 299
    assert await tokens.token() != first
    assert auth.exchanges == 2


async def test_a_failed_refresh_keeps_a_token_that_still_has_life(
    auth: FakeGoogleAuth, tmp_path: Path
) -> None:
    now = [0.0]
    tokens = await _tokens(auth, tmp_path, clock=lambda: now[0])
    first = await tokens.token()
    now[0] = 3600 - 200  # in the refresh margin, far from expiry
    auth.fail(503, "temporarily_unavailable", times=10)
    assert await tokens.token() == first


async def test_a_failed_exchange_is_a_clean_upstream_error(auth: FakeGoogleAuth, tmp_path: Path) -> None:
    tokens = await _tokens(auth, tmp_path)
    auth.fail(400, "invalid_grant")
    with pytest.raises(
        UpstreamError, match="vx: could not get a Google access token: invalid_grant"
    ) as caught:
        await tokens.token()
    assert "assertion" not in caught.value.message
    assert caught.value.__cause__ is None
    # The next call tries again.
    assert (await tokens.token()).startswith("ya29.fake-")


async def test_replace_refreshes_a_rejected_token_once(auth: FakeGoogleAuth, tmp_path: Path) -> None:
    tokens = await _tokens(auth, tmp_path)
    first = await tokens.token()
    auth.revoke_all()
    second, again = await asyncio.gather(tokens.replace(first), tokens.replace(first))
    assert second == again != first
    assert auth.valid(second)
    assert auth.exchanges == 2


async def test_a_static_token_is_never_refreshed() -> None:
    from pydantic import SecretStr

    static = StaticToken(SecretStr("ya29.static"))
    assert not static.refreshable
    assert await static.token() == await static.replace("ya29.static") == "ya29.static"
    assert "ya29" not in repr(static)


async def test_a_bad_credentials_file_fails_at_open(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"providers\.vx\.credentials_file"):
        await open_vertex(_config(credentials_file=str(tmp_path / "missing.json")), None)  # type: ignore[arg-type]
