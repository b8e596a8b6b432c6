"""The Costs page: spend over time per dimension (a uPlot chart with its points), the totals per
value, the budgets with their use, the CSV download; range and dimension kept in the URL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect
from ui_support import UiGateway, login, shot


def _priced_with_budgets(config: dict[str, Any]) -> None:
    # gpt-test is the fake's own model: give it a price so both providers spend.
    config["prices"] = {"gpt-test": {"input": 1, "output": 2}}
    config["budgets"] = [
        {"name": "monthly-all", "period": "monthly", "limit_usd": 0.01},
        {"name": "daily-tiny", "period": "daily", "limit_usd": 0.001, "action": "warn"},
        {
            "name": "team-web",
            "scope": "team",
            "match": "web",
            "period": "weekly",
            "limit_usd": 5,
            "action": "downgrade",
            "downgrade_to": "beta,gpt-test",
        },
    ]


def test_the_costs_chart_renders_with_data_points(
    page: Page, ui_gateway_factory: Callable[..., UiGateway]
) -> None:
    gateway = ui_gateway_factory(_priced_with_budgets)
    gateway.traffic(3, 2)
    login(page, gateway.url, gateway.admin_token)
    page.goto(gateway.url + "/ui/costs")
    chart = page.get_by_test_id("cost-chart")
    expect(chart.locator("canvas")).to_have_count(1)
    expect(chart).to_have_attribute("data-points", "7")  # seven days, today last
    expect(chart).to_have_attribute("data-series", "alpha\nbeta")
    expect(chart.locator(".u-legend")).to_contain_text("alpha")
    totals = page.get_by_test_id("cost-total-row")
    expect(totals).to_have_count(2)
    expect(totals.first).to_contain_text("alpha")  # the dearer first
    expect(totals.first).to_contain_text("3")
    expect(page.get_by_test_id("cost-total")).to_contain_text("$0.00")

    # Budgets and their use: 3 sonnet requests ($0.000834 each) and 2 at the test price.
    rows = page.get_by_test_id("budget-row")
    expect(rows).to_have_count(3)
    daily = rows.filter(has_text="daily-tiny")
    expect(daily).to_have_class("spent")
    expect(daily).to_contain_text("warning")
    monthly = rows.filter(has_text="monthly-all")
    expect(monthly).to_contain_text("refused")
    use = float(monthly.get_by_test_id("budget-use").get_attribute("value") or "0")
    assert 0.2 < use < 0.3
    expect(rows.filter(has_text="team-web")).to_contain_text("beta,gpt-test")
    shot(page, "costs")

    # Another dimension redraws the chart; the URL keeps it.
    page.get_by_test_id("cost-dimension").select_option("model")
    expect(chart).to_have_attribute("data-series", "claude-sonnet-4-6\ngpt-test")
    expect(chart.locator("canvas")).to_have_count(1)
    expect(page).to_have_url(gateway.url + "/ui/costs?by=model")
    page.get_by_test_id("cost-range").select_option("24h")
    expect(chart).to_have_attribute("data-points", "24")
    expect(page).to_have_url(gateway.url + "/ui/costs?range=24h&by=model")
    page.reload()
    expect(page.get_by_test_id("cost-dimension")).to_have_value("model")
    expect(chart).to_have_attribute("data-points", "24")
    expect(totals).to_have_count(2)
    page.get_by_test_id("cost-dimension").select_option("key")
    expect(chart).to_have_attribute("data-series", "(none)")  # the admin token is no client key
    shot(page, "costs-hourly")


def test_the_csv_download(page: Page, ui_gateway: UiGateway) -> None:
    ui_gateway.traffic(1, 1)
    login(page, ui_gateway.url, ui_gateway.admin_token)
    page.goto(ui_gateway.url + "/ui/costs?by=model&range=30d")
    expect(page.get_by_test_id("cost-total-row")).to_have_count(2)
    with page.expect_download() as info:
        page.get_by_test_id("cost-csv").click()
    download = info.value
    assert download.suggested_filename == "ccrouter-usage-day-model.csv"
    lines = Path(download.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("day,model,requests,errors,")
    assert sorted(line.split(",")[1] for line in lines[1:]) == ["claude-sonnet-4-6", "gpt-test"]
    # Without budgets the page says how to set them.
    expect(page.get_by_test_id("budgets-empty")).to_be_visible()
    expect(page.get_by_test_id("budgets-table")).to_be_hidden()


CLIENT = "ck-ana-costs-0123456789abcdef"
VIEWER = "vk-vic-costs-0123456789abcdef"


def test_a_viewer_sees_spend_per_team_and_user(
    page: Page, ui_gateway_factory: Callable[..., UiGateway]
) -> None:
    def team_keys(config: dict[str, Any]) -> None:
        _priced_with_budgets(config)
        config["server"]["api_keys"] = [
            {"name": "ana", "key": CLIENT, "user": "ana", "team": "web"},
            {"name": "vic", "key": VIEWER, "role": "viewer"},
        ]

    gateway = ui_gateway_factory(team_keys)
    for model in ("alpha,claude-sonnet-4-6", "beta,gpt-test"):
        assert gateway.message(model, key=CLIENT) == 200
    login(page, gateway.url, VIEWER)
    page.goto(gateway.url + "/ui/costs?by=team")
    expect(page.get_by_test_id("role")).to_have_text("viewer")
    chart = page.get_by_test_id("cost-chart")
    expect(chart).to_have_attribute("data-series", "web")
    expect(page.get_by_test_id("budget-row").filter(has_text="team-web")).not_to_contain_text("0.0%")
    page.get_by_test_id("cost-dimension").select_option("user")
    expect(chart).to_have_attribute("data-series", "ana")
    assert CLIENT not in page.content()
    page.goto(gateway.url + "/ui/requests?key=ana")
    rows = page.get_by_test_id("request-row")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("ana")
    assert CLIENT not in page.content()


def test_many_sessions_draw_the_six_dearest_and_the_rest_as_other(page: Page, ui_gateway: UiGateway) -> None:
    # Session n makes n requests: the dearer the later. The page asks the ledger for the top values
    # and for those over time (never for every session of the range).
    body = {
        "model": "alpha,claude-sonnet-4-6",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}],
    }
    for n in range(1, 9):
        for _ in range(n):
            status, _ = ui_gateway.call(
                "POST", "/v1/messages", body, token="", headers={"x-claude-code-session-id": f"sess-{n}"}
            )
            assert status == 200
    login(page, ui_gateway.url, ui_gateway.admin_token)
    page.goto(ui_gateway.url + "/ui/costs?by=session")
    chart = page.get_by_test_id("cost-chart")
    expect(chart).to_have_attribute(
        "data-series", "\n".join([*(f"sess-{n}" for n in range(8, 2, -1)), "other"])
    )
    totals = page.get_by_test_id("cost-total-row")
    expect(totals).to_have_count(8)
    expect(totals.first).to_contain_text("sess-8")
    expect(page.locator("#cost-chart-note")).to_contain_text("other")
    expect(page.locator("#cost-requests")).to_have_text("36")
    shot(page, "costs-sessions")
