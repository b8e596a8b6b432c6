"""Egress proxies: the choice per URL (``EgressProxy``: the environment read once, ``NO_PROXY``, a
provider's own ``proxy``, ``proxy: none``), and ``HttpProvider`` through the shipped forward proxy:
CONNECT to an https fake, absolute-form forwarding to an http one, proxy credentials, a proxy down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from pydantic import ValidationError

from ccrouter.config import ProviderConfig
from ccrouter.config_errors import describe
from ccrouter.errors import ConfigError, UpstreamConnectionError
from ccrouter.messages import Message, MessagesRequest, TextBlock
from ccrouter.providers.deadline import DeadlineConnector
from ccrouter.providers.google_tokens import GoogleTokens, load_credentials
from ccrouter.providers.http import HttpProvider, new_session
from ccrouter.providers.openai import OpenAIAdapter
from ccrouter.providers.proxy import EgressProxy
from ccrouter.testing import FakeGoogleAuth, FakeUpstream, Reply
from ccrouter.testing.proxy import ForwardProxy
from ccrouter.testing.tls import TestTLS

PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")
REQUEST = MessagesRequest(model="m", max_tokens=10, messages=[Message("user", [TextBlock("hi")])])


@pytest.fixture(autouse=True)
def _no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def _vertex(**fields: Any) -> ProviderConfig:
    return ProviderConfig(name="vx", type="vertex", project="fake-project", **fields)


def _config(base_url: str = "https://api.example.com/v1", **fields: Any) -> ProviderConfig:
    return ProviderConfig(
        name="up", type="openai", vendor="generic", base_url=base_url, api_key="k", **fields
    )


# -- the choice ---------------------------------------------------------------------------------


def test_no_proxy_anywhere_is_none() -> None:
    assert EgressProxy.open(_config()) is None


def test_the_environment_per_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://secure-proxy:3128")
    egress = EgressProxy.open(_config())
    assert egress is not None
    assert str(egress.for_url("https://api.example.com/v1/chat/completions")) == "http://secure-proxy:3128"
    assert egress.for_url("http://plain.example.com/v1") is None  # no HTTP_PROXY
    monkeypatch.setenv("HTTP_PROXY", "plain-proxy:8080")  # no scheme: http://, as curl reads it
    monkeypatch.setenv("https_proxy", "http://lower-case-wins:1")
    egress = EgressProxy.open(_config())
    assert egress is not None
    assert str(egress.for_url("http://plain.example.com/v1")) == "http://plain-proxy:8080"
    assert str(egress.for_url("https://api.example.com/x")) == "http://lower-case-wins:1"


def test_the_environment_is_read_when_the_provider_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://first:1")
    egress = EgressProxy.open(_config())
    monkeypatch.setenv("HTTPS_PROXY", "http://second:2")
    assert egress is not None
    assert str(egress.for_url("https://api.example.com/")) == "http://first:1"


def test_no_proxy_names_hosts_to_reach_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", "http://proxy:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example.com, .corp,127.0.0.1:9000")
    egress = EgressProxy.open(_config())
    assert egress is not None
    assert egress.for_url("https://internal.example.com/v1") is None
    assert egress.for_url("https://llm.corp/v1") is None
    assert egress.for_url("http://127.0.0.1:9000/v1") is None
    assert str(egress.for_url("http://127.0.0.1:9001/v1")) == "http://proxy:3128"
    assert str(egress.for_url("https://api.example.com/v1")) == "http://proxy:3128"
    monkeypatch.setenv("NO_PROXY", "*")
    everything = EgressProxy.open(_config())
    assert everything is not None
    assert everything.for_url("https://api.example.com/v1") is None


def test_a_provider_proxy_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://env-proxy:1")
    monkeypatch.setenv("NO_PROXY", "api.example.com")
    egress = EgressProxy.open(_config(proxy="http://own-proxy:2"))
    assert egress is not None
    assert str(egress.for_url("https://api.example.com/v1")) == "http://own-proxy:2"
    assert EgressProxy.open(_config(proxy="none")) is None
    assert EgressProxy.open(_config(proxy="")) is None
    assert EgressProxy.open(_config(proxy="NONE")) is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("socks5://user:hunter2-pass@proxy:1080", "only http:// and https://"),
        ("http://user:hunter2-pass@", "names no host"),
        ("http://user:hunter2-pass@proxy:1080/path", "scheme, host and port only"),
        ("http://user:hunter2-pass@proxy:notaport", "not a URL"),
    ],
)
def test_a_bad_proxy_is_a_config_error_without_its_password(value: str, problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _config(proxy=value)
    (line,) = [describe(error) for error in caught.value.errors()]  # as the config loader words it
    assert line.startswith("proxy: ")
    assert not line.startswith("proxy: proxy")
    assert problem in line
    assert "hunter2" not in line


def test_a_bad_environment_proxy_fails_the_open_without_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5h://me:hunter2-pass@proxy:1080")
    with pytest.raises(ConfigError, match=r"^HTTPS_PROXY \(environment\): only http") as caught:
        EgressProxy.open(_config())
    assert "hunter2" not in str(caught.value)


def test_the_proxy_is_masked_in_the_config() -> None:
    config = _config(proxy="http://me:hunter2-pass@proxy:3128")
    assert "hunter2" not in repr(config)
    assert "hunter2" not in str(config.model_dump())


def test_scrub_removes_every_form_of_the_credentials() -> None:
    egress = EgressProxy.open(_config(proxy="http://me:p%40ss-w0rd@proxy:3128"))
    assert egress is not None
    text = "407, url=URL('http://me:p%40ss-w0rd@proxy:3128') me:p@ss-w0rd p@ss-w0rd"
    clean = egress.scrub(text)
    assert "w0rd" not in clean
    assert "proxy:3128" in clean


# -- through the shipped forward proxy ---------------------------------------------------------


@pytest.fixture
async def proxy() -> AsyncIterator[ForwardProxy]:
    async with ForwardProxy() as server:
        yield server


@pytest.fixture
async def tls() -> TestTLS:
    return await asyncio.to_thread(TestTLS.create)


@pytest.fixture
async def https_fake(tls: TestTLS) -> AsyncIterator[FakeUpstream]:
    fake = FakeUpstream(rate_limit_headers=False)
    await fake.start(ssl=await asyncio.to_thread(tls.server_context))
    try:
        yield fake
    finally:
        await fake.stop()


def _target(url: str) -> str:
    return url.split("://", 1)[1]


async def _complete(config: ProviderConfig, session: aiohttp.ClientSession | None = None) -> str:
    provider = HttpProvider(config, OpenAIAdapter(config), session or new_session())
    try:
        response = await provider.complete(REQUEST, "gpt-test")
    finally:
        await provider.aclose()
    block = response.content[0]
    assert isinstance(block, TextBlock)
    return block.text


async def test_an_https_provider_is_tunnelled_with_connect(
    monkeypatch: pytest.MonkeyPatch, proxy: ForwardProxy, https_fake: FakeUpstream, tls: TestTLS
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    https_fake.script(Reply(text="through the tunnel"))
    session = aiohttp.ClientSession(connector=DeadlineConnector(ssl=tls.client_context()))
    assert await _complete(_config(https_fake.url + "/v1"), session) == "through the tunnel"
    assert [(seen.method, seen.target) for seen in proxy.seen] == [("CONNECT", _target(https_fake.url))]
    assert https_fake.requests[0].path == "/v1/chat/completions"


async def test_an_http_provider_is_forwarded(
    monkeypatch: pytest.MonkeyPatch, proxy: ForwardProxy, fake: FakeUpstream
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    fake.script(Reply(text="forwarded"))
    assert await _complete(_config(fake.url + "/v1")) == "forwarded"
    assert [(seen.method, seen.target, seen.path) for seen in proxy.seen] == [
        ("POST", _target(fake.url), "/v1/chat/completions")
    ]
    # The provider's own headers reach it; the proxy's never do.
    assert fake.requests[0].headers["authorization"] == "Bearer k"
    assert "proxy-authorization" not in fake.requests[0].headers


async def test_proxy_credentials_go_to_the_proxy_only(
    fake: FakeUpstream, https_fake: FakeUpstream, tls: TestTLS
) -> None:
    async with ForwardProxy(auth=("me", "hunter2-pass")) as proxy:
        assert await _complete(_config(fake.url + "/v1", proxy=proxy.url_with_auth))
        session = aiohttp.ClientSession(connector=DeadlineConnector(ssl=tls.client_context()))
        assert await _complete(_config(https_fake.url + "/v1", proxy=proxy.url_with_auth), session)
    assert [seen.method for seen in proxy.seen] == ["POST", "CONNECT"]
    assert all(seen.proxy_authorization == "Basic bWU6aHVudGVyMi1wYXNz" for seen in proxy.seen)
    assert "proxy-authorization" not in fake.requests[0].headers
    assert "proxy-authorization" not in https_fake.requests[0].headers


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_refused_proxy_credentials_are_a_connection_error_without_them(
    scheme: str, fake: FakeUpstream, https_fake: FakeUpstream, tls: TestTLS
) -> None:
    upstream = fake if scheme == "http" else https_fake
    async with ForwardProxy(auth=("me", "right-password")) as proxy:
        wrong = proxy.url.replace("http://", "http://me:wrong-hunter2@")
        session = aiohttp.ClientSession(connector=DeadlineConnector(ssl=tls.client_context()))
        with pytest.raises(UpstreamConnectionError) as caught:
            await _complete(_config(upstream.url + "/v1", proxy=wrong), session)
    assert len(proxy.refused) == 1
    assert "407" in caught.value.message
    assert "hunter2" not in caught.value.message
    assert "hunter2" not in str(caught.value)
    assert upstream.requests == []


async def test_a_proxy_down_is_a_connection_error(fake: FakeUpstream) -> None:
    proxy = ForwardProxy()
    url = await proxy.start()
    await proxy.stop()  # its port is now closed
    down = url.replace("http://", "http://me:hunter2-pass@")
    with pytest.raises(UpstreamConnectionError, match=r"^up: connection failed") as caught:
        await _complete(_config(fake.url + "/v1", proxy=down))
    assert "hunter2" not in caught.value.message
    assert fake.requests == []


# -- Google token exchanges (vertex) take the same proxy ---------------------------------------


async def _google_tokens(auth: FakeGoogleAuth, tmp_path: Path, config: ProviderConfig) -> GoogleTokens:
    path = tmp_path / "sa.json"
    await asyncio.to_thread(path.write_bytes, orjson.dumps(auth.service_account()))
    return GoogleTokens("vx", lambda: load_credentials(str(path)), egress=EgressProxy.open(config))


@pytest.mark.parametrize("how", ["environment", "provider"])
async def test_google_token_exchanges_go_through_the_proxy(
    how: str, monkeypatch: pytest.MonkeyPatch, proxy: ForwardProxy, tmp_path: Path
) -> None:
    async with FakeGoogleAuth() as auth:
        if how == "environment":
            monkeypatch.setenv("HTTP_PROXY", proxy.url)
            config = _vertex()
        else:
            config = _vertex(proxy=proxy.url)
        tokens = await _google_tokens(auth, tmp_path, config)
        assert auth.valid(await tokens.token())
        target = _target(auth.url)
    assert [(seen.method, seen.target, seen.path) for seen in proxy.seen] == [("POST", target, "/token")]


async def test_proxy_none_keeps_google_token_exchanges_direct(
    monkeypatch: pytest.MonkeyPatch, proxy: ForwardProxy, tmp_path: Path
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)  # requests would read it by itself
    async with FakeGoogleAuth() as auth:
        tokens = await _google_tokens(auth, tmp_path, _vertex(proxy="none"))
        assert auth.valid(await tokens.token())
    assert proxy.seen == []
    assert auth.exchanges == 1
