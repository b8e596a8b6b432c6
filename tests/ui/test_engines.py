"""The dashboard in the two other engines: Firefox (Debian's firefox-esr over WebDriver BiDi, see
``firefox.py``) and WebKit, Safari's engine (Debian's WebKitGTK over classic WebDriver, see
``webkit.py``): logging in, every page rendering (in Firefox without a JavaScript error), the
Overview's providers and count, the charts drawn on their canvases (uPlot), the Requests rows, the
Keys form and the Configuration editor. Chromium runs the full browser tests through Playwright."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from firefox import Firefox
from ui_support import ARTIFACTS, UiGateway
from webkit import WebKit

ENGINES: dict[str, Any] = {"firefox": Firefox, "webkit": WebKit}


@pytest.fixture(params=sorted(ENGINES))
def engine(request: pytest.FixtureRequest) -> Iterator[Any]:
    try:
        browser = ENGINES[request.param].launch()
    except FileNotFoundError as error:
        pytest.fail(str(error))
    yield browser
    browser.close()


async def _tour(browser: Any, gateway: UiGateway, name: str) -> None:
    url = gateway.url
    async with browser:
        await browser.goto(url + "/ui/login")
        await browser.evaluate(
            "(() => { document.querySelector('[data-testid=token-input]').value = "
            + json.dumps(gateway.admin_token)
            + "; document.querySelector('[data-testid=login-submit]').click(); return true; })()"
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
        await browser.screenshot(ARTIFACTS / f"{name}-overview.png")

        await browser.goto(url + "/ui/costs")
        points = await browser.wait_for(
            "(() => { const n = document.querySelector('[data-testid=cost-chart]');"
            " return n && n.querySelector('canvas') && Number(n.dataset.points); })()"
        )
        assert points > 0
        await browser.screenshot(ARTIFACTS / f"{name}-costs.png")

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
    assert browser.errors == [], f"JavaScript errors in {name}: {browser.errors}"


def test_every_page_works_in_firefox_and_webkit(
    engine: Any, ui_gateway: UiGateway, request: pytest.FixtureRequest
) -> None:
    ui_gateway.traffic(3, 2)
    asyncio.run(_tour(engine, ui_gateway, request.node.callspec.params["engine"]))
