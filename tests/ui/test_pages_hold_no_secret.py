"""No secret reaches the browser: neither a provider's key nor the admin token appears in any page's
HTML or in any answer the pages' scripts fetch, for an admin, who sees the most."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, Response
from ui_support import UiGateway, login

import ccrouter.ui
from ccrouter.ui.pages import PAGES

SECRETS = ("sk-alpha-upstream-secret", "sk-beta-upstream-secret")
TEMPLATES = Path(ccrouter.ui.__file__).parent / "templates"


def test_no_page_and_no_api_answer_holds_a_secret(page: Page, ui_gateway: UiGateway) -> None:
    ui_gateway.traffic(2, 1)
    secrets = (*SECRETS, ui_gateway.admin_token)
    answers: list[tuple[str, str]] = []

    def keep(response: Response) -> None:
        if "/ui/static/" in response.url or response.request.method != "GET":
            return
        if "text/event-stream" in (response.headers.get("content-type") or ""):
            return  # a live stream never ends; its snapshots are the overview API's
        if 300 <= response.status < 400:
            return  # a redirect has no body to read
        answers.append((response.url, response.text()))

    login(page, ui_gateway.url, ui_gateway.admin_token)
    page.on("response", keep)
    opened = [p for p in PAGES if (TEMPLATES / p.template).exists()]
    assert opened, "no page to check"
    for item in opened:
        page.goto(ui_gateway.url + item.path)
        # Not "networkidle": the overview's live stream stays open. A second lets the scripts fetch.
        page.wait_for_load_state("load")
        page.wait_for_timeout(1000)
        html = page.content()
        for secret in secrets:
            assert secret not in html, f"{item.path} renders a secret"
    fetched = [url for url, _ in answers if "/api/" in url]
    assert fetched, "the pages fetched no API answer"
    for url, text in answers:
        for secret in secrets:
            assert secret not in text, f"{url} answers with a secret"
    # The same for the API answers no page happens to fetch.
    for path in ("/api/config", "/health/providers", "/api/keys", "/api/audit", "/api/requests"):
        status, body = ui_gateway.call("GET", path)
        assert status == 200, (path, body)
        for secret in secrets:
            assert secret not in str(body), f"{path} answers with a secret"
