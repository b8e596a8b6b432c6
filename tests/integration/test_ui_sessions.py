"""The dashboard's login and sessions over HTTP (issue 15): what the browser tests in tests/ui show
in Chromium, here case by case against the app in process: who may log in, where a login may lead,
what a session cookie opens on /api and when it stops opening it, the static files and headers."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from gateway_support import GatewayFactory

from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream, JwksServer, SigningKey

ADMIN = "admin-token-0123456789"
KEYS = {role: f"{role}-key-0123456789abcdef" for role in ("client", "viewer", "operator")}


def _settings(fake_url: str, tmp_path: Path, **server: Any) -> Settings:
    return Settings.model_validate(
        {
            "server": {
                "admin_token": ADMIN,
                "api_keys": [{"name": f"{role}-key", "key": key, "role": role} for role, key in KEYS.items()],
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
    )


@pytest.fixture
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    """A client that keeps cookies (for 127.0.0.1 too) and does not follow redirects by itself."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def _login(
    browser: aiohttp.ClientSession, url: str, token: str, *, next_path: str = "/ui/audit", **headers: str
) -> aiohttp.ClientResponse:
    async with browser.post(
        url + "/ui/login", data={"token": token, "next": next_path}, allow_redirects=False, headers=headers
    ) as response:
        await response.read()
        return response


async def _csrf(browser: aiohttp.ClientSession, url: str) -> str:
    async with browser.get(url + "/ui/audit") as response:
        assert response.status == 200
        match = re.search(r'name="csrf-token" content="([^"]+)"', await response.text())
    assert match is not None
    return match.group(1)


async def test_a_page_without_a_session_leads_to_the_login_form(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path, browser: aiohttp.ClientSession
) -> None:
    url = await gateway(_settings(fake.url, tmp_path))
    async with browser.get(url + "/ui/costs?since=7d", allow_redirects=False) as response:
        assert response.status == 303
        assert response.headers["location"] == "/ui/login?next=/ui/costs?since%3D7d"
    async with browser.get(url + "/ui", allow_redirects=False) as response:
        assert response.status == 301
        assert response.headers["location"] == "/ui/"
    async with browser.get(url + "/ui/login") as response:
        assert response.status == 200
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"


async def test_a_login_leads_only_to_a_dashboard_page(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path, browser: aiohttp.ClientSession
) -> None:
    url = await gateway(_settings(fake.url, tmp_path))
    for target in ("https://evil.example/", "//evil.example/ui/", "/ui\\@evil.example", "/api/keys"):
        response = await _login(browser, url, ADMIN, next_path=target)
        assert response.status == 303
        assert response.headers["location"] == "/ui/"
    response = await _login(browser, url, ADMIN, next_path="/ui/requests?provider=up")
    assert response.headers["location"] == "/ui/requests?provider=up"
    cookie = response.cookies["ccr_session"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"


async def test_who_may_log_in(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path, browser: aiohttp.ClientSession
) -> None:
    url = await gateway(_settings(fake.url, tmp_path))
    # A client key calls models; it does not open the dashboard.
    response = await _login(browser, url, KEYS["client"])
    assert response.status == 403
    assert "ccr_session" not in response.cookies
    # A login form posted from another site is refused, whatever it carries.
    response = await _login(browser, url, ADMIN, origin="http://evil.example")
    assert response.status == 403
    assert "ccr_session" not in response.cookies
    response = await _login(browser, url, KEYS["viewer"])
    assert response.status == 303
    assert "ccr_session" in response.cookies


async def test_failed_logins_are_throttled_per_address(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path, browser: aiohttp.ClientSession
) -> None:
    url = await gateway(_settings(fake.url, tmp_path, auth_throttle_burst=3, auth_throttle_per_minute=1))
    statuses = [(await _login(browser, url, f"wrong-{n}")).status for n in range(5)]
    assert statuses[:3] == [401, 401, 401]
    assert statuses[3:] == [429, 429]
    # Even the right token waits now (a guesser learns nothing from the answer).
    assert (await _login(browser, url, ADMIN)).status == 429


async def test_a_session_opens_the_api_for_its_role_and_writes_need_the_csrf_token(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path, browser: aiohttp.ClientSession
) -> None:
    url = await gateway(_settings(fake.url, tmp_path))
    await _login(browser, url, KEYS["viewer"])
    csrf = await _csrf(browser, url)
    async with browser.get(url + "/api/requests") as response:
        assert response.status == 200
    # The role decides, as with the key itself: a viewer writes nothing, token or not.
    async with browser.post(
        url + "/api/keys", json={"name": "x"}, headers={"x-ccrouter-csrf": csrf}
    ) as response:
        assert response.status == 403
        assert "needs role operator" in (await response.json())["error"]["message"]
    # An operator's session writes with the token, and only with it.
    browser.cookie_jar.clear()
    await _login(browser, url, KEYS["operator"])
    csrf = await _csrf(browser, url)
    async with browser.post(url + "/api/keys", json={"name": "made-in-ui"}) as response:
        assert response.status == 403
        assert "CSRF" in (await response.json())["error"]["message"]
    async with browser.post(
        url + "/api/keys", json={"name": "made-in-ui"}, headers={"x-ccrouter-csrf": csrf + "x"}
    ) as response:
        assert response.status == 403
    async with browser.post(
        url + "/api/keys", json={"name": "made-in-ui"}, headers={"x-ccrouter-csrf": csrf}
    ) as response:
        assert response.status == 201
    # A key in the Authorization header is used as before, without any CSRF token.
    async with browser.get(url + "/api/keys", headers={"authorization": f"Bearer {ADMIN}"}) as response:
        assert response.status == 200


async def test_a_revoked_key_ends_its_sessions_at_once(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path, browser: aiohttp.ClientSession
) -> None:
    url = await gateway(_settings(fake.url, tmp_path))
    admin = {"authorization": f"Bearer {ADMIN}"}
    async with aiohttp.ClientSession() as api:
        async with api.post(url + "/api/keys", json={"name": "v", "role": "viewer"}, headers=admin) as made:
            created = await made.json()
        await _login(browser, url, created["key"])
        async with browser.get(url + "/api/audit") as response:
            assert response.status == 200
        async with api.delete(url + f"/api/keys/{created['id']}", headers=admin) as revoked:
            assert revoked.status == 200
    async with browser.get(url + "/api/audit") as response:
        assert response.status == 401
    async with browser.get(url + "/ui/audit", allow_redirects=False) as response:
        assert response.status == 303


async def test_logging_out_needs_the_csrf_token(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path, browser: aiohttp.ClientSession
) -> None:
    url = await gateway(_settings(fake.url, tmp_path))
    await _login(browser, url, ADMIN)
    csrf = await _csrf(browser, url)
    async with browser.post(url + "/ui/logout", data={"csrf": "forged"}, allow_redirects=False) as response:
        assert response.status == 303
    async with browser.get(url + "/ui/audit", allow_redirects=False) as response:
        assert response.status == 200  # still logged in
    async with browser.post(url + "/ui/logout", data={"csrf": csrf}, allow_redirects=False) as response:
        assert response.status == 303
    async with browser.get(url + "/ui/audit", allow_redirects=False) as response:
        assert response.status == 303


async def test_static_files_are_cached_by_etag(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path, browser: aiohttp.ClientSession
) -> None:
    url = await gateway(_settings(fake.url, tmp_path))
    async with browser.get(url + "/ui/static/ccrouter.js") as response:
        assert response.status == 200
        assert response.content_type == "text/javascript"
        etag = response.headers["etag"]
    async with browser.get(url + "/ui/static/ccrouter.js", headers={"if-none-match": etag}) as response:
        assert response.status == 304
    async with browser.get(url + "/ui/static/uPlot.iife.min.js") as response:
        assert response.status == 200
    for missing in ("nothing.js", "..%2Fpages.py", "uPlot.LICENSE"):
        async with browser.get(url + "/ui/static/" + missing) as response:
            assert response.status == 404


async def test_the_dashboard_can_be_turned_off(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path, browser: aiohttp.ClientSession
) -> None:
    url = await gateway(_settings(fake.url, tmp_path, ui={"enabled": False}))
    async with browser.get(url + "/ui/login") as response:
        assert response.status == 404


async def test_a_single_sign_on_token_logs_in_until_it_expires(
    fake: FakeUpstream, gateway: GatewayFactory, tmp_path: Path, browser: aiohttp.ClientSession
) -> None:
    key = SigningKey.rsa("idp-ui-1")
    async with JwksServer([key]) as idp:
        settings = _settings(
            fake.url,
            tmp_path,
            jwt={
                "jwks_url": idp.url,
                "issuer": "https://idp.example.test",
                "audience": "ccrouter",
                "user_claim": "email",
                "role_claim": "groups",
                "role_map": {"gw-viewers": "viewer"},
                "default_role": None,
                "leeway_s": 0,
            },
        )
        url = await gateway(settings)
        now = int(time.time())
        claims = {
            "iss": "https://idp.example.test",
            "aud": "ccrouter",
            "sub": "u-1",
            "email": "ann@example.test",
            "groups": ["gw-viewers"],
            "iat": now,
            "exp": now + 3,
        }
        response = await _login(browser, url, key.mint(claims))
        assert response.status == 303
        async with browser.get(url + "/ui/audit") as page:
            assert page.status == 200
            assert "ann@example.test" in await page.text()  # who is logged in
        await asyncio.sleep(3.5)
        # The token expired: so did the session, though the cookie would still last hours.
        async with browser.get(url + "/ui/audit", allow_redirects=False) as page:
            assert page.status == 303
