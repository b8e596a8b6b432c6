"""The Overview page in a browser: both fake providers and the right request count after traffic,
and the live view (``/api/live``) updating the page without a reload."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, expect
from ui_support import UiGateway, login, shot


def test_the_overview_shows_both_providers_and_the_request_count(page: Page, ui_gateway: UiGateway) -> None:
    ui_gateway.traffic(3, 2)
    login(page, ui_gateway.url, ui_gateway.admin_token)
    expect(page).to_have_url(ui_gateway.url + "/ui/")
    rows = page.get_by_test_id("provider-row")
    expect(rows).to_have_count(2)
    expect(page.get_by_test_id("requests-total")).to_have_text("5")
    expect(rows.filter(has_text="alpha").get_by_test_id("provider-requests")).to_have_text("3")
    expect(rows.filter(has_text="beta").get_by_test_id("provider-requests")).to_have_text("2")
    expect(rows.first.get_by_test_id("provider-state")).to_have_text("ok")
    expect(page.get_by_test_id("model-row")).to_have_count(2)
    # The charts are drawn (uPlot's canvas), one point per minute of the hour.
    for name in ("chart-rps", "chart-p95", "chart-tps"):
        expect(page.get_by_test_id(name).locator("canvas")).to_have_count(1)
        expect(page.get_by_test_id(name)).to_have_attribute("data-points", "60")
    html = page.content()
    assert "sk-alpha-upstream-secret" not in html
    assert ui_gateway.admin_token not in html
    shot(page, "overview")


def test_the_live_view_updates_without_a_reload(page: Page, ui_gateway: UiGateway) -> None:
    login(page, ui_gateway.url, ui_gateway.admin_token)
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    expect(page.get_by_test_id("live-state")).to_have_attribute("data-state", "live")
    total = page.get_by_test_id("requests-total")
    expect(total).to_have_text("0")
    page.evaluate("window.__sameDocument = true")
    ui_gateway.traffic(2, 1)
    expect(total).to_have_text("3", timeout=10_000)
    ui_gateway.traffic(0, 1)
    expect(total).to_have_text("4", timeout=10_000)
    expect(
        page.get_by_test_id("provider-row").filter(has_text="beta").get_by_test_id("provider-requests")
    ).to_have_text("2")
    assert navigations == []
    assert page.evaluate("window.__sameDocument") is True
    shot(page, "overview-live")


def test_a_viewer_sees_the_overview(page: Page, ui_gateway_factory: Callable[..., UiGateway]) -> None:
    viewer = "viewer-key-overview-ui-0123456789"

    def edit(config: dict[str, Any]) -> None:
        config["server"]["api_keys"] = [{"name": "vic", "key": viewer, "role": "viewer"}]
        config["server"]["require_auth"] = False  # the fakes' traffic stays anonymous

    gateway = ui_gateway_factory(edit)
    gateway.traffic(1, 1)
    login(page, gateway.url, viewer)
    expect(page.get_by_test_id("role")).to_have_text("viewer")
    expect(page.get_by_test_id("provider-row")).to_have_count(2)
    expect(page.get_by_test_id("requests-total")).to_have_text("2")
    expect(page.get_by_test_id("live-state")).to_have_attribute("data-state", "live")
    assert viewer not in page.content()
