"""Egress proxies through the real gateway (in-process: the environment is set before it starts, when
its providers open and read it), the official anthropic SDK as the client, the shipped forward proxy
between the gateway and the fake upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import anthropic
import pytest
from gateway_support import GatewayFactory

from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream, Reply
from ccrouter.testing.proxy import ForwardProxy

AnthropicAt = Callable[[str], anthropic.AsyncAnthropic]
PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(autouse=True)
def _no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
async def anthropic_at() -> AsyncIterator[AnthropicAt]:
    """The SDK client, not proxied itself (httpx reads HTTP_PROXY too): the proxy sees only the
    gateway's requests."""
    opened: list[anthropic.AsyncAnthropic] = []

    def make(url: str) -> anthropic.AsyncAnthropic:
        # The gateway is http: no certificates to load (a blocking read).
        http = anthropic.DefaultAsyncHttpxClient(trust_env=False, verify=False)
        client = anthropic.AsyncAnthropic(base_url=url, api_key="client-key", max_retries=0, http_client=http)
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.close()


@pytest.fixture
async def proxy() -> AsyncIterator[ForwardProxy]:
    async with ForwardProxy() as server:
        yield server


def _provider(name: str, url: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "openai",
        "vendor": "generic",
        "base_url": url + "/v1",
        "api_key": "sk-upstream-secret-key",
        "models": ["gpt-test"],
        **fields,
    }


def _settings(*providers: dict[str, Any]) -> Settings:
    first = providers[0]["name"]
    fallback = [f"{p['name']},gpt-test" for p in providers[1:]]
    return Settings.model_validate(
        {
            "providers": list(providers),
            "router": {"default": f"{first},gpt-test", "fallback": {"default": fallback}},
            "routing": {"auto_fallback": "off"},
        }
    )


def _target(url: str) -> str:
    return url.split("://", 1)[1]


async def _text(client: anthropic.AsyncAnthropic, *, stream: bool = False) -> str:
    if stream:
        async with client.messages.stream(model="m", max_tokens=20, messages=HI) as events:
            final = await events.get_final_message()
    else:
        final = await client.messages.create(model="m", max_tokens=20, messages=HI)  # type: ignore[arg-type]
    block = final.content[0]
    assert block.type == "text"
    return block.text


async def test_requests_go_through_the_environment_proxy(
    monkeypatch: pytest.MonkeyPatch,
    proxy: ForwardProxy,
    fake: FakeUpstream,
    gateway: GatewayFactory,
    anthropic_at: AnthropicAt,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    client = anthropic_at(await gateway(_settings(_provider("up", fake.url))))
    fake.script(Reply(text="via the proxy"), Reply(text="streamed via the proxy"))
    assert await _text(client) == "via the proxy"
    assert await _text(client, stream=True) == "streamed via the proxy"
    assert proxy.count(_target(fake.url)) == 2
    assert [seen.path for seen in proxy.seen] == ["/v1/chat/completions"] * 2
    assert len(fake.requests) == 2


async def test_no_proxy_naming_the_upstream_bypasses_it(
    monkeypatch: pytest.MonkeyPatch,
    proxy: ForwardProxy,
    fake: FakeUpstream,
    gateway: GatewayFactory,
    anthropic_at: AnthropicAt,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    client = anthropic_at(await gateway(_settings(_provider("up", fake.url))))
    fake.script(Reply(text="direct"))
    assert await _text(client) == "direct"
    assert proxy.seen == []
    assert len(fake.requests) == 1


async def test_a_provider_proxy_overrides_the_environment(
    monkeypatch: pytest.MonkeyPatch,
    proxy: ForwardProxy,
    fake: FakeUpstream,
    gateway: GatewayFactory,
    anthropic_at: AnthropicAt,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # the provider's own proxy applies to every request
    async with ForwardProxy(auth=("team", "hunter2-proxy-pass")) as own:
        settings = _settings(_provider("up", fake.url, proxy=own.url_with_auth))
        client = anthropic_at(await gateway(settings))
        fake.script(Reply(text="own proxy"))
        assert await _text(client) == "own proxy"
    assert own.count(_target(fake.url)) == 1
    assert proxy.seen == []
    # ``proxy: none``: straight to the provider whatever the environment says.
    monkeypatch.delenv("NO_PROXY")
    client = anthropic_at(await gateway(_settings(_provider("up", fake.url, proxy="none"))))
    assert await _text(client)
    assert proxy.seen == []


async def test_a_proxy_down_fails_over_and_never_shows_its_credentials(
    monkeypatch: pytest.MonkeyPatch,
    fake: FakeUpstream,
    gateway: GatewayFactory,
    anthropic_at: AnthropicAt,
) -> None:
    gone = ForwardProxy()
    url = await gone.start()
    await gone.stop()
    down = url.replace("http://", "http://team:hunter2-proxy-pass@")
    settings = _settings(
        _provider("proxied", fake.url, proxy=down), _provider("direct", fake.url, proxy="none")
    )
    client = anthropic_at(await gateway(settings))
    fake.script(Reply(text="from the fallback"))
    assert await _text(client) == "from the fallback"
    assert len(fake.requests) == 1

    # Alone, the proxied provider's failure is a clean 502 in Anthropic's envelope, credentials out.
    client = anthropic_at(await gateway(_settings(_provider("proxied", fake.url, proxy=down))))
    with pytest.raises(anthropic.APIStatusError) as caught:
        await client.messages.create(model="m", max_tokens=20, messages=HI)  # type: ignore[arg-type]
    assert caught.value.status_code == 502
    body = caught.value.response.text
    assert "connection failed" in body
    assert "hunter2" not in body
    assert "team:" not in body


async def test_refused_proxy_credentials_fail_over_without_showing_them(
    fake: FakeUpstream, gateway: GatewayFactory, anthropic_at: AnthropicAt
) -> None:
    async with ForwardProxy(auth=("team", "right-password")) as guarded:
        wrong = guarded.url.replace("http://", "http://team:hunter2-wrong@")
        alone = _settings(_provider("proxied", fake.url, proxy=wrong))
        client = anthropic_at(await gateway(alone))
        with pytest.raises(anthropic.APIStatusError) as caught:
            await client.messages.create(model="m", max_tokens=20, messages=HI)  # type: ignore[arg-type]
        assert caught.value.status_code == 502
        assert "407" in caught.value.response.text
        assert "hunter2" not in caught.value.response.text
        both = _settings(
            _provider("proxied", fake.url, proxy=wrong), _provider("direct", fake.url, proxy="none")
        )
        client = anthropic_at(await gateway(both))
        assert await _text(client, stream=True)
    assert len(guarded.refused) == 2
    assert guarded.seen == []
    assert len(fake.requests) == 1
