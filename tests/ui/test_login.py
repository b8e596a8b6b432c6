"""Logging in to the dashboard: the form, the session cookie, CSRF on writes, logging out."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from playwright.sync_api import Page, expect
from ui_support import UiGateway, login, shot


def test_login_sets_a_strict_http_only_session(page: Page, ui_gateway: UiGateway) -> None:
    page.goto(ui_gateway.url + "/ui/audit")
    expect(page).to_have_url(ui_gateway.url + "/ui/login?next=/ui/audit")
    shot(page, "login")
    page.get_by_test_id("token-input").fill(ui_gateway.admin_token)
    page.get_by_test_id("login-submit").click()
    expect(page).to_have_url(ui_gateway.url + "/ui/audit")
    expect(page.get_by_test_id("role")).to_have_text("admin")
    (cookie,) = page.context.cookies()
    assert cookie["name"] == "ccr_session"
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    assert ui_gateway.admin_token not in cookie["value"]  # sealed, not the token itself
    html = page.content()
    assert ui_gateway.admin_token not in html
    # The login is in the audit trail the page shows.
    expect(page.get_by_test_id("audit-row").filter(has_text="ui.login")).to_have_count(1)
    shot(page, "audit")


def test_a_wrong_token_is_refused_on_the_form(page: Page, ui_gateway: UiGateway) -> None:
    page.goto(ui_gateway.url + "/ui/login")
    page.get_by_test_id("token-input").fill("adm-wrong-token")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("login-error")).to_have_text("that key or token is not valid here")
    assert page.context.cookies() == []


def test_a_write_without_the_csrf_token_is_refused(page: Page, ui_gateway: UiGateway) -> None:
    login(page, ui_gateway.url, ui_gateway.admin_token)
    page.goto(ui_gateway.url + "/ui/audit")
    forged = page.evaluate(
        """async () => {
            const r = await fetch('/api/config/reload', {method: 'POST', credentials: 'same-origin'});
            return [r.status, (await r.json()).error.message];
        }"""
    )
    assert forged[0] == 403
    assert "CSRF" in forged[1]
    # The same call with the page's token passes the check (the gateway has a config file).
    allowed = page.evaluate("async () => (await fetch('/api/config/reload', {method: 'POST', "
                            "headers: {'x-ccrouter-csrf': window.ccr.csrf}})).status")  # fmt: skip
    assert allowed == 200


def test_a_cross_origin_write_is_refused_even_with_the_token(page: Page, ui_gateway: UiGateway) -> None:
    login(page, ui_gateway.url, ui_gateway.admin_token)
    page.goto(ui_gateway.url + "/ui/audit")
    csrf = page.evaluate("window.ccr.csrf")
    (cookie,) = page.context.cookies()
    request = urllib.request.Request(ui_gateway.url + "/api/config/reload", method="POST", data=b"")
    request.add_header("cookie", f"ccr_session={cookie['value']}")
    request.add_header("x-ccrouter-csrf", csrf)
    request.add_header("origin", "http://evil.example")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    refused.value.close()
    assert refused.value.code == 403


def test_logging_out_ends_the_session(page: Page, ui_gateway: UiGateway) -> None:
    login(page, ui_gateway.url, ui_gateway.admin_token)
    page.goto(ui_gateway.url + "/ui/audit")
    page.get_by_test_id("logout").click()
    expect(page).to_have_url(ui_gateway.url + "/ui/login")
    page.goto(ui_gateway.url + "/ui/audit")
    expect(page).to_have_url(ui_gateway.url + "/ui/login?next=/ui/audit")
    status, body = ui_gateway.call("GET", "/api/audit?action=ui.logout")
    assert status == 200
    assert len(body["entries"]) == 1
