"""The Requests page: the ledger's request log with its filters, each row opening onto its route
decision, attempts, tokens, cost and timings; the filters kept in the URL; failed requests shown."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, expect
from ui_support import UiGateway, login, shot

from ccrouter.testing import Fault


def test_the_log_lists_filters_and_explains_requests(page: Page, ui_gateway: UiGateway) -> None:
    ui_gateway.traffic(3, 2)
    login(page, ui_gateway.url, ui_gateway.admin_token)
    page.goto(ui_gateway.url + "/ui/requests")
    rows = page.get_by_test_id("request-row")
    expect(rows).to_have_count(5)
    expect(rows.first).to_contain_text("beta")  # newest first
    expect(rows.first).to_contain_text("gpt-test")
    expect(rows.last).to_contain_text("claude-sonnet-4-6")
    expect(rows.last).to_contain_text("$0.0")  # a priced model's cost
    shot(page, "requests")

    # Filter by provider: only its rows, and the URL reproduces the view.
    page.get_by_test_id("filter-provider").fill("alpha")
    page.get_by_test_id("filter-apply").click()
    expect(rows).to_have_count(3)
    for index in range(3):
        expect(rows.nth(index)).to_have_attribute("data-provider", "alpha")
    expect(page).to_have_url(ui_gateway.url + "/ui/requests?provider=alpha")
    page.reload()
    expect(page.get_by_test_id("filter-provider")).to_have_value("alpha")
    expect(rows).to_have_count(3)

    # A row opens onto its route decision and figures, and closes again.
    rows.first.click()
    detail = page.get_by_test_id("request-detail")
    expect(detail).to_have_count(1)
    expect(detail.get_by_test_id("route-reason")).not_to_be_empty()
    expect(detail.get_by_test_id("route-reason")).not_to_have_text("no route was chosen", use_inner_text=True)
    expect(detail.get_by_test_id("request-attempt")).to_have_count(1)
    expect(detail.get_by_test_id("request-attempt")).to_contain_text("alpha,claude-sonnet-4-6")
    expect(detail).to_contain_text("Cache read")
    expect(detail.get_by_test_id("detail-cost")).to_contain_text("$0.0")
    expect(detail).to_contain_text("Request id")
    shot(page, "requests-expanded")
    rows.first.click()
    expect(detail).to_have_count(0)

    # Other filters reach the API: none of these requests is a 5xx; a bad value says so.
    page.goto(ui_gateway.url + "/ui/requests?status=5xx")
    expect(page.get_by_test_id("requests-empty")).to_be_visible()
    page.goto(ui_gateway.url + "/ui/requests?status=7xx")
    expect(page.get_by_test_id("requests-error")).to_contain_text("status")
    page.goto(ui_gateway.url + "/ui/requests?model=gpt-test&range=7d")
    expect(rows).to_have_count(2)
    expect(page.get_by_test_id("filter-range")).to_have_value("7d")
    page.goto(ui_gateway.url + "/ui/requests?status=200&scenario=explicit")
    expect(rows).to_have_count(5)
    page.goto(ui_gateway.url + "/ui/requests?range=custom&since=2099-01-01T00:00")
    expect(page.get_by_test_id("filter-since")).to_be_visible()
    expect(page.get_by_test_id("requests-empty")).to_be_visible()
    page.get_by_test_id("filter-since").fill("2000-01-01T00:00")
    page.get_by_test_id("filter-apply").click()
    expect(rows).to_have_count(5)


def test_failed_requests_and_fallbacks_show(page: Page, ui_gateway_factory: Callable[..., UiGateway]) -> None:
    def fallback(config: dict[str, Any]) -> None:
        config["router"]["fallback"] = {"default": ["beta,gpt-test"]}

    gateway = ui_gateway_factory(fallback)
    gateway.fakes["alpha"].script(Fault("status", status=400))
    assert gateway.message() == 400  # a client error is the client's: no fallback
    gateway.fakes["alpha"].script(*[Fault("status", status=529)] * 4)
    assert gateway.message() == 200  # alpha overloaded: beta serves it
    assert gateway.message("nowhere,no-model") >= 400
    login(page, gateway.url, gateway.admin_token)
    page.goto(gateway.url + "/ui/requests")
    rows = page.get_by_test_id("request-row")
    expect(rows).to_have_count(3)
    refused, served, failed = rows.nth(0), rows.nth(1), rows.nth(2)
    expect(failed.get_by_test_id("request-status")).to_have_text("400")
    expect(failed).to_have_class("request failed")
    expect(served.get_by_test_id("request-status")).to_have_text("200")
    expect(served).to_have_attribute("data-provider", "beta")
    expect(refused).to_have_class("request failed")
    failed.click()
    detail = page.get_by_test_id("request-detail")
    expect(detail.get_by_test_id("detail-status")).to_contain_text("400")
    served.click()
    expect(detail).to_have_count(2)
    attempts = detail.nth(0).get_by_test_id("request-attempt")
    expect(attempts.first).to_contain_text("alpha,claude-sonnet-4-6")
    expect(attempts.first).to_contain_text("529")
    expect(attempts.last).to_contain_text("beta,gpt-test")
    shot(page, "requests-failed")
    # The failure class filter shows only the failed ones.
    page.get_by_test_id("filter-status").fill("error")
    page.get_by_test_id("filter-apply").click()
    expect(rows).to_have_count(2)
    expect(page).to_have_url(gateway.url + "/ui/requests?status=error")


def test_older_requests_come_a_page_at_a_time(page: Page, ui_gateway: UiGateway) -> None:
    login(page, ui_gateway.url, ui_gateway.admin_token)
    page.goto(ui_gateway.url + "/ui/requests")
    expect(page.get_by_test_id("requests-empty")).to_be_visible()
    expect(page.get_by_test_id("requests-older")).to_be_hidden()
    ui_gateway.traffic(3, 0)
    page.goto(ui_gateway.url + "/ui/requests?limit=2")
    rows = page.get_by_test_id("request-row")
    expect(rows).to_have_count(2)
    page.get_by_test_id("requests-older").click()
    expect(rows).to_have_count(3)
    expect(page.get_by_test_id("requests-older")).to_be_hidden()
    expect(page.get_by_test_id("requests-empty")).to_be_hidden()
