"""The dashboard in Firefox (Debian's firefox-esr over WebDriver BiDi, see ``firefox.py``): logging
in, every page rendering without a JavaScript error, the Overview's providers and count, the charts
drawn on their canvases (uPlot), the Requests rows and the Configuration editor. Chromium runs the
full browser tests; this one checks the same pages work in a second engine."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from firefox import Firefox
from ui_support import ARTIFACTS, UiGateway


@pytest.fixture(scope="module")
def firefox() -> Iterator[Firefox]:
    try:
        browser = Firefox.launch()
    except FileNotFoundError as error:
        pytest.fail(str(error))
    yield browser
    browser.close()


async def _tour(browser: Firefox, gateway: UiGateway) -> None:
    url = gateway.url
    async with browser:
        await browser.goto(url + "/ui/login")
        await browser.evaluate(
            "document.querySelector('[data-testid=token-input]').value = "
            + json.dumps(gateway.admin_token)
            + "; document.querySelector('[data-testid=login-submit]').click(); true"
        )
        await browser.wait_for("location.pathname === '/ui/' && !!window.ccr")
        await browser.wait_for("document.querySelectorAll('[data-testid=provider-row]').length === 2")
        await browser.wait_for(
            "document.querySelector('[data-testid=requests-total]').textContent.trim() === '5'"
        )
        # Every chart is drawn: a canvas with a size, from the vendored uPlot.
        charts = await browser.wait_for(
            "(() => { const c = [...document.querySelectorAll('canvas')];"
            " return c.length >= 3 && c.every((x) => x.width > 0 && x.height > 0) && c.length; })()"
        )
        assert charts >= 3
        await browser.screenshot(ARTIFACTS / "firefox-overview.png")

        await browser.goto(url + "/ui/costs")
        points = await browser.wait_for(
            "(() => { const n = document.querySelector('[data-testid=cost-chart]');"
            " return n && n.querySelector('canvas') && Number(n.dataset.points); })()"
        )
        assert points > 0
        await browser.screenshot(ARTIFACTS / "firefox-costs.png")

        await browser.goto(url + "/ui/requests")
        await browser.wait_for("document.querySelectorAll('[data-testid=request-row]').length === 5")

        await browser.goto(url + "/ui/keys")
        await browser.wait_for("!!document.querySelector('[data-testid=key-create-submit]')")

        await browser.goto(url + "/ui/config")
        source = await browser.wait_for("document.querySelector('[data-testid=config-editor]').value")
        assert "providers" in source
        assert "sk-alpha-upstream-secret" not in source

        await browser.goto(url + "/ui/audit")
        await browser.wait_for("document.querySelectorAll('[data-testid=audit-row]').length > 0")
    assert browser.errors == [], f"JavaScript errors in Firefox: {browser.errors}"


def test_every_page_works_in_firefox(firefox: Firefox, ui_gateway: UiGateway) -> None:
    ui_gateway.traffic(3, 2)
    asyncio.run(_tour(firefox, ui_gateway))
