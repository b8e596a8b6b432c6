"""The dashboard's browser tests' fixtures: ``ui_gateway`` (``ccrouter serve`` in a subprocess, a
fresh HOME, two fake providers on loopback; see ``ui_support``), ``browser`` (Debian's Chromium,
driven by Playwright) and ``page`` (a new context's page, failing the test on any JavaScript error).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from ui_support import CHROMIUM, UiGateway, config_for, free_port, wait_up

import ccrouter
from ccrouter.testing import FakeUpstream
from ccrouter.testing.threaded import running


@pytest.fixture
def ui_gateway_factory(tmp_path: Path) -> Iterator[Callable[..., UiGateway]]:
    """Starts gateways; ``edit(config)`` may change the config before it is written."""
    with ExitStack() as stack:

        def start(edit: Callable[[dict[str, Any]], None] | None = None) -> UiGateway:
            fakes = {name: stack.enter_context(running(FakeUpstream())) for name in ("alpha", "beta")}
            home = tmp_path / f"home-{secrets.token_hex(3)}"
            home.mkdir()
            admin_token = "adm-" + secrets.token_urlsafe(16)
            config = config_for(fakes, admin_token, home)
            if edit is not None:
                edit(config)
            path = home / "config.yaml"
            path.write_text(yaml.safe_dump(config))
            port = free_port()
            log = home / "gateway.log"
            env = {
                **os.environ,
                "HOME": str(home),
                "PYTHONPATH": str(Path(ccrouter.__file__).parents[1]),
                "NO_COLOR": "1",
            }
            output = stack.enter_context(log.open("wb"))
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ccrouter.cli.main",
                    "serve",
                    "--config",
                    str(path),
                    "--port",
                    str(port),
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=home,
            )

            def stop() -> None:
                process.terminate()
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

            stack.callback(stop)
            url = f"http://127.0.0.1:{port}"
            wait_up(url, process, log)
            return UiGateway(url, admin_token, path, process, fakes)

        yield start


@pytest.fixture
def ui_gateway(ui_gateway_factory: Callable[..., UiGateway]) -> UiGateway:
    return ui_gateway_factory()


# Module scope, not session: a live Playwright driver keeps an event loop of its own, which would
# make blockbuster flag the async tests collected after a UI module when run in one session.
@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium is not at {CHROMIUM}: apt-get install -y chromium (or set CCROUTER_TEST_CHROMIUM)"
        )
    # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
    launched = playwright_driver.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
    )
    yield launched
    launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    context.set_default_timeout(10_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
