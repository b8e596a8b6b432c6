"""The Keys page in a browser: a key created in the page works on /v1/messages and its secret is shown
once; rotate and revoke; limits edited in place; the API's errors shown; a viewer sees no write
control on any page and a forged write is refused; an operator cannot make an admin key."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from ui_support import UiGateway, login, shot

from ccrouter.auth.keys import hash_secret
from ccrouter.ui.pages import PAGES

# The controls that change something: none of them may be on a page a viewer opens.
WRITE_CONTROLS = (
    "key-create-name",
    "key-create-role",
    "key-create-submit",
    "key-edit",
    "key-rotate",
    "key-revoke",
    "config-editor",
    "config-apply",
)


def _require_auth(config: dict[str, Any]) -> None:
    # Managed keys only (no static api_keys): an unknown or rotated-away secret is a 401, not anonymous.
    config["server"]["require_auth"] = True


@pytest.fixture
def gateway(ui_gateway_factory: Any) -> UiGateway:
    started: UiGateway = ui_gateway_factory(_require_auth)
    return started


def api_key(gateway: UiGateway, name: str, role: str) -> str:
    """A managed key made through the API with the admin token; its secret."""
    status, body = gateway.call("POST", "/api/keys", {"name": name, "role": role})
    assert status == 201, body
    secret: str = body["key"]
    return secret


def open_keys(page: Page, gateway: UiGateway) -> None:
    page.goto(gateway.url + "/ui/keys")
    expect(page.locator("#keys[data-loaded=true]")).to_have_count(1)


def create_in_page(page: Page, name: str, **fields: str) -> str:
    """Fill the create form (``fields`` by input name), submit, and read the secret shown once."""
    page.get_by_test_id("key-create-name").fill(name)
    for field, value in fields.items():
        control = page.locator(f"#key-create [name={field}]")
        if control.evaluate("node => node.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)
    page.get_by_test_id("key-create-submit").click()
    secret = page.get_by_test_id("key-secret")
    expect(secret).to_be_visible()
    expect(page.locator("#key-secret-title")).to_contain_text(name)
    text = secret.inner_text().strip()
    assert text.startswith("ccr-")
    return text


def key_row(page: Page, name: str) -> Any:
    return page.get_by_test_id("key-row").filter(has=page.locator(".key-name", has_text=name))


def test_a_key_created_in_the_page_works_and_its_secret_is_shown_once(page: Page, gateway: UiGateway) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=gateway.url)
    login(page, gateway.url, gateway.admin_token)
    open_keys(page, gateway)
    expect(page.locator("#keys-empty")).to_be_visible()
    secret = create_in_page(
        page, "ci-bot", user="ana", team="platform", rpm="60", budget_usd="5", budget_period="monthly"
    )
    expect(page.locator("#key-secret-panel")).to_contain_text("will not be shown again")
    page.get_by_test_id("key-secret-copy").click()
    expect(page.locator("#key-secret-copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    row = key_row(page, "ci-bot")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("ana / platform")
    expect(row).to_contain_text("60 · \N{EN DASH}")
    expect(row).to_contain_text("of $5.00")
    expect(row.get_by_test_id("key-status")).to_have_text("active")
    assert secret not in row.inner_text()  # the table shows the prefix only
    shot(page, "keys-secret")

    # The key works on /v1/messages, and its use is the row's spend and 30-day count after a reload.
    assert gateway.message(key=secret) == 200
    assert gateway.message(key=secret[:-1] + ("A" if secret[-1] != "A" else "B")) == 401

    # No answer of the API holds the secret or its hash, and the page forgets it on reload.
    status, listed = gateway.call("GET", "/api/keys")
    assert status == 200
    raw = json.dumps(listed)
    assert secret not in raw
    assert hash_secret(secret) not in raw
    assert {"hash", "previous_hash", "key", "secret"}.isdisjoint(listed["keys"][0])
    page.reload()
    expect(page.locator("#keys[data-loaded=true]")).to_have_count(1)
    expect(page.locator("#key-secret-panel")).to_be_hidden()
    assert secret not in page.content()
    row = key_row(page, "ci-bot")
    expect(row).to_contain_text("1 req")
    expect(row.locator("td").nth(9)).not_to_have_text("\N{EN DASH}")  # last used
    api_key(gateway, "grafana", "viewer")
    page.reload()
    expect(page.get_by_test_id("key-row")).to_have_count(2)
    shot(page, "keys")


def test_rotate_gives_a_new_secret_and_revoke_ends_the_key(page: Page, gateway: UiGateway) -> None:
    login(page, gateway.url, gateway.admin_token)
    open_keys(page, gateway)
    old = create_in_page(page, "rotating")
    page.get_by_test_id("key-secret-dismiss").click()
    expect(page.locator("#key-secret-panel")).to_be_hidden()
    assert page.get_by_test_id("key-secret").inner_text() == ""
    assert gateway.message(key=old) == 200

    row = key_row(page, "rotating")
    row.get_by_test_id("key-rotate").click()
    row.get_by_test_id("key-cancel").click()  # a second thought: nothing changed
    assert gateway.message(key=old) == 200

    def rotate(grace: str) -> str:
        shown = page.get_by_test_id("key-secret")
        before = shown.inner_text()
        row.get_by_test_id("key-rotate").click()
        row.get_by_test_id("key-rotate-grace").select_option(grace)
        row.get_by_test_id("key-rotate-confirm").click()
        expect(page.locator("#key-secret-title")).to_have_text("New secret for rotating")
        expect(shown).not_to_have_text(before)
        secret = shown.inner_text().strip()
        assert secret.startswith("ccr-")
        return secret

    # With an hour's grace both secrets work, and the row says until when.
    rolling = rotate("3600")
    assert rolling != old
    expect(row).to_contain_text("old secret until")
    assert gateway.message(key=rolling) == 200
    assert gateway.message(key=old) == 200
    # "At once": only the newest secret works.
    new = rotate("0")
    assert new not in (old, rolling)
    expect(row).not_to_contain_text("old secret until")
    assert gateway.message(key=new) == 200
    assert gateway.message(key=rolling) == 401
    assert gateway.message(key=old) == 401

    row = key_row(page, "rotating")
    row.get_by_test_id("key-revoke").click()
    expect(row).to_contain_text("stops working at once")
    shot(page, "keys-revoke")
    row.get_by_test_id("key-revoke-confirm").click()
    row = key_row(page, "rotating")
    expect(row.get_by_test_id("key-status")).to_have_text("revoked")
    expect(row.get_by_test_id("key-revoke")).to_have_count(0)  # a revoked key is final
    assert gateway.message(key=new) == 401


def test_limits_are_edited_in_place_and_api_errors_are_shown(page: Page, gateway: UiGateway) -> None:
    login(page, gateway.url, gateway.admin_token)
    open_keys(page, gateway)
    # The API's refusals are shown in the page, and nothing is made.
    create_bad = page.get_by_test_id("key-create-submit")
    page.get_by_test_id("key-create-name").fill("has space")
    create_bad.click()
    expect(page.get_by_test_id("key-error")).to_contain_text("name:")
    page.get_by_test_id("key-create-name").fill("budgeted")
    page.locator("#key-create [name=budget_usd]").fill("3")
    create_bad.click()
    expect(page.get_by_test_id("key-error")).to_contain_text("budget_period: required")
    expect(page.locator("#key-secret-panel")).to_be_hidden()
    assert gateway.call("GET", "/api/keys")[1]["keys"] == []

    page.locator("#key-create [name=budget_period]").select_option("daily")
    create_in_page(page, "budgeted")
    expect(page.get_by_test_id("key-error")).to_be_hidden()
    row = key_row(page, "budgeted")
    row.get_by_test_id("key-edit").click()
    editor = page.get_by_test_id("key-editor")
    editor.get_by_test_id("key-edit-rpm").fill("7")
    editor.get_by_test_id("key-edit-tpm").fill("9000")
    editor.get_by_test_id("key-edit-budget").fill("")  # clearing the budget clears its period
    editor.get_by_test_id("key-edit-role").select_option("viewer")  # an admin may change a role
    editor.get_by_test_id("key-edit-save").click()
    row = key_row(page, "budgeted")
    expect(row).to_contain_text("7 · 9,000")
    expect(row).to_contain_text("no budget")
    expect(row.locator(".key-role")).to_have_text("viewer")
    expect(page.get_by_test_id("key-editor")).to_have_count(0)
    (shown,) = gateway.call("GET", "/api/keys")[1]["keys"]
    assert (shown["rpm"], shown["tpm"], shown["budget_usd"], shown["budget_period"]) == (7, 9000, None, None)
    assert shown["role"] == "viewer"
    actions = [e["action"] for e in gateway.call("GET", "/api/audit?action=role.changed")[1]["entries"]]
    assert actions == ["role.changed"]
    # A bad edit is refused with the API's message, and the key keeps its values.
    row.get_by_test_id("key-edit").click()
    page.get_by_test_id("key-editor").locator("[name=expires]").fill("yesterday")
    page.get_by_test_id("key-edit-save").click()
    expect(page.get_by_test_id("key-error")).to_contain_text("expires:")
    shot(page, "keys-edit")
    assert gateway.call("GET", "/api/keys")[1]["keys"][0]["expires_at"] is None


def _templated_pages() -> list[str]:
    templates = resources.files("ccrouter.ui").joinpath("templates")
    return [p.path for p in PAGES if templates.joinpath(p.template).is_file()]


def test_a_viewer_sees_no_write_control_and_a_forged_post_is_refused(
    page: Page, gateway: UiGateway, browser: Browser
) -> None:
    viewer = api_key(gateway, "watcher", "viewer")
    login(page, gateway.url, viewer)
    answer = page.goto(gateway.url + "/ui/keys")
    assert answer is not None
    assert answer.status == 403
    expect(page.locator("main")).to_contain_text("needs role operator")
    paths = _templated_pages()
    assert "/ui/keys" in paths
    for path in paths:
        page.goto(gateway.url + path)
        page.wait_for_load_state("load")
        page.wait_for_timeout(300)  # let the page's script render what it renders
        for testid in WRITE_CONTROLS:
            assert page.get_by_test_id(testid).count() == 0, f"{testid} on {path} for a viewer"
        assert page.locator("form[method=post]:not([action='/ui/logout']), button.danger").count() == 0, path

    # Forged writes from the viewer's logged-in browser: without the CSRF token, and with it.
    csrf = page.evaluate("window.ccr.csrf")
    assert csrf
    bare = page.request.post(gateway.url + "/api/keys", data={"name": "forged"})
    assert bare.status == 403, bare.text()
    assert "CSRF" in bare.json()["error"]["message"]
    with_token = page.request.post(
        gateway.url + "/api/keys", data={"name": "forged"}, headers={"x-ccrouter-csrf": csrf}
    )
    assert with_token.status == 403, with_token.text()
    assert "needs role operator" in with_token.json()["error"]["message"]
    assert with_token.json()["type"] == "error"

    # The admin's session from another site is refused too, even with the CSRF token.
    admin_context = browser.new_context()
    try:
        admin = admin_context.new_page()
        login(admin, gateway.url, gateway.admin_token)
        admin.goto(gateway.url + "/ui/keys")
        admin_csrf = admin.evaluate("window.ccr.csrf")
        evil = admin.request.post(
            gateway.url + "/api/keys",
            data={"name": "forged"},
            headers={"x-ccrouter-csrf": admin_csrf, "origin": "http://evil.example"},
        )
        assert evil.status == 403, evil.text()
    finally:
        admin_context.close()
    names = [k["name"] for k in gateway.call("GET", "/api/keys")[1]["keys"]]
    assert names == ["watcher"]


def test_an_operator_manages_client_keys_only(page: Page, gateway: UiGateway) -> None:
    operator = api_key(gateway, "ops", "operator")
    api_key(gateway, "root", "admin")
    login(page, gateway.url, operator)
    open_keys(page, gateway)
    options = page.get_by_test_id("key-create-role").locator("option").all_inner_texts()
    assert options == ["client"]
    # The admin's and the operator's own keys are listed without actions.
    for name in ("root", "ops"):
        row = key_row(page, name)
        expect(row).to_contain_text("admin only")
        expect(row.get_by_test_id("key-revoke")).to_have_count(0)
    secret = create_in_page(page, "ops-made")
    assert gateway.message(key=secret) == 200
    expect(key_row(page, "ops-made").get_by_test_id("key-revoke")).to_have_count(1)
    # The API refuses an admin key from the operator's session, with a valid CSRF token.
    refused = page.evaluate(
        """async () => {
            try { await window.ccr.api('POST', '/api/keys', {name: 'sneaky', role: 'admin'}); return 0; }
            catch (e) { return [e.status, e.message]; }
        }"""
    )
    assert refused[0] == 403
    assert "cannot give a key role admin" in refused[1]
    names = {k["name"] for k in gateway.call("GET", "/api/keys")[1]["keys"]}
    assert "sneaky" not in names
