"""The Configuration page: the running configuration masked for every role; an admin's edit with an
error shows it at its key path and changes nothing, a valid edit applies through the live reload;
a viewer gets no editor."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from playwright.sync_api import Page, expect
from ui_support import UiGateway, login, shot

VIEWER = "viewer-key-for-the-config-page"
CLIENT = "client-key-for-the-config-page"
UPSTREAM_SECRETS = ("sk-alpha-upstream-secret", "sk-beta-upstream-secret")


def _with_keys(config: dict[str, Any]) -> None:
    config["server"]["api_keys"] = [
        {"name": "viewer", "key": VIEWER, "role": "viewer"},
        {"name": "client", "key": CLIENT, "role": "client"},
    ]


@pytest.fixture
def gateway(ui_gateway_factory: Callable[..., UiGateway]) -> UiGateway:
    return ui_gateway_factory(_with_keys)


def _open_editor(page: Page, gateway: UiGateway) -> str:
    login(page, gateway.url, gateway.admin_token)
    page.goto(gateway.url + "/ui/config")
    editor = page.get_by_test_id("config-editor")
    expect(editor).to_have_value(re.compile(r".*__ccrouter_secret_1__.*", re.DOTALL))
    expect(page.get_by_test_id("config-running")).to_contain_text('"default": "alpha,claude-sonnet-4-6"')
    source = editor.input_value()
    html = page.content()
    for secret in (*UPSTREAM_SECRETS, gateway.admin_token, VIEWER, CLIENT):
        assert secret not in source
        assert secret not in html
    return source


def test_an_edit_with_an_error_shows_it_and_changes_nothing(page: Page, gateway: UiGateway) -> None:
    before = gateway.config_path.read_bytes()
    _, shown = gateway.call("GET", "/api/config")
    source = _open_editor(page, gateway)
    assert "server:\n" in source
    page.get_by_test_id("config-editor").fill(source.replace("server:\n", "server:\n  port: 99999\n", 1))
    page.get_by_test_id("config-apply").click()
    error = page.get_by_test_id("config-error")
    expect(error).to_be_visible()
    expect(error.locator("li")).to_have_count(1)
    expect(error).to_contain_text("server.port: Input should be less than or equal to 65535 (got 99999)")
    shot(page, "config-error")
    assert gateway.config_path.read_bytes() == before
    _, after = gateway.call("GET", "/api/config")
    assert after["version"] == shown["version"]
    assert gateway.message("claude-sonnet-4-6", key=CLIENT) == 200
    assert len(gateway.fakes["alpha"].requests) == 1


def test_a_valid_edit_applies_through_the_live_reload(page: Page, gateway: UiGateway) -> None:
    _, shown = gateway.call("GET", "/api/config")
    source = _open_editor(page, gateway)
    old = "default: alpha,claude-sonnet-4-6"
    assert old in source
    page.get_by_test_id("config-editor").fill(source.replace(old, "default: beta,gpt-test"))
    page.get_by_test_id("config-validate").click()
    expect(page.get_by_test_id("config-ok")).to_have_text("Valid.")
    page.get_by_test_id("config-apply").click()
    expect(page.get_by_test_id("config-ok")).to_contain_text("Applied: file version")
    expect(page.get_by_test_id("config-error")).to_be_hidden()
    _, after = gateway.call("GET", "/api/config")
    assert after["version"] != shown["version"]
    assert after["settings"]["router"]["default"] == "beta,gpt-test"
    # The page shows the new running configuration and the file's new version.
    expect(page.get_by_test_id("config-version")).to_have_text(after["version"])
    expect(page.get_by_test_id("config-running")).to_contain_text('"default": "beta,gpt-test"')
    _, source_now = gateway.call("GET", "/api/config/source")
    expect(page.get_by_test_id("config-file-version")).to_have_text(source_now["version"])
    shot(page, "config")
    # Every secret survived the edit made on the masked text, and the gateway routes by the new file.
    written = yaml.safe_load(gateway.config_path.read_text())
    assert written["providers"][0]["api_key"] == "sk-alpha-upstream-secret"
    assert written["server"]["admin_token"] == gateway.admin_token
    assert gateway.message("claude-sonnet-4-6", key=CLIENT) == 200
    assert len(gateway.fakes["beta"].requests) == 1
    assert len(gateway.fakes["alpha"].requests) == 0


def test_a_stale_edit_tells_the_user_to_reload(page: Page, gateway: UiGateway) -> None:
    source = _open_editor(page, gateway)
    gateway.config_path.write_text(gateway.config_path.read_text() + "# changed on disk\n")
    page.get_by_test_id("config-editor").fill(source + "# mine\n")
    page.get_by_test_id("config-apply").click()
    expect(page.get_by_test_id("config-error")).to_contain_text("reload the page")
    assert gateway.config_path.read_text().endswith("# changed on disk\n")


def test_a_viewer_sees_the_configuration_but_no_editor(page: Page, gateway: UiGateway) -> None:
    login(page, gateway.url, VIEWER)
    page.goto(gateway.url + "/ui/config")
    expect(page.get_by_test_id("role")).to_have_text("viewer")
    expect(page.get_by_test_id("config-running")).to_contain_text('"name": "alpha"')
    expect(page.get_by_test_id("config-running")).to_contain_text('"api_key": "********"')
    assert page.get_by_test_id("config-editor").count() == 0
    assert page.get_by_test_id("config-apply").count() == 0
    assert page.get_by_test_id("config-reload").count() == 0
    html = page.content()
    for secret in (*UPSTREAM_SECRETS, gateway.admin_token, VIEWER, CLIENT):
        assert secret not in html
    # The API refuses the source to a viewer's session anyway.
    status = page.evaluate("async () => (await fetch('/api/config/source')).status")
    assert status == 403
    shot(page, "config-viewer")
