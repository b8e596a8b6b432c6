"""What the dashboard's browser tests share (the fixtures are in conftest.py): ``UiGateway``, a
served gateway with two fake providers; ``login(page, url, token)`` through the form; ``shot(page,
name)``, a screenshot under ``artifacts/ui/`` (or ``$CCROUTER_ARTIFACTS/ui``), which CI keeps."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from ccrouter.testing import FakeUpstream

CHROMIUM = os.environ.get("CCROUTER_TEST_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("CCROUTER_ARTIFACTS", ROOT / "artifacts")) / "ui"
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class UiGateway:
    """A served gateway: its URL, admin token, config file and the two fakes behind it (``alpha``,
    Anthropic's wire; ``beta``, OpenAI's)."""

    url: str
    admin_token: str
    config_path: Path
    process: subprocess.Popen[bytes]
    fakes: dict[str, FakeUpstream] = field(default_factory=dict)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """One HTTP call with ``token`` (None: the admin token; "": none): its status and decoded
        JSON body."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        credential = self.admin_token if token is None else token
        if credential:
            request.add_header("authorization", f"Bearer {credential}")
        request.add_header("content-type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            with error:
                raw, status = error.read(), error.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode()

    def message(self, model: str = "claude-sonnet-4-6", *, key: str | None = None) -> int:
        """One /v1/messages request (``model`` may be ``provider,model``); its status."""
        body = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hello"}]}
        status, _ = self.call("POST", "/v1/messages", body, token=key or "")
        return status

    def traffic(self, alpha: int, beta: int) -> None:
        for _ in range(alpha):
            assert self.message("alpha,claude-sonnet-4-6") == 200
        for _ in range(beta):
            assert self.message("beta,gpt-test") == 200


def config_for(fakes: dict[str, FakeUpstream], admin_token: str, home: Path) -> dict[str, Any]:
    return {
        "server": {"admin_token": admin_token},
        "providers": [
            {
                "name": "alpha",
                "type": "anthropic",
                "base_url": fakes["alpha"].url,
                "api_key": "sk-alpha-upstream-secret",
                "models": ["claude-sonnet-4-6"],
            },
            {
                "name": "beta",
                "type": "openai",
                "base_url": fakes["beta"].url + "/v1",
                "api_key": "sk-beta-upstream-secret",
                "models": ["gpt-test"],
            },
        ],
        "router": {"default": "alpha,claude-sonnet-4-6"},
        "store": {"url": f"sqlite:///{home / 'usage.db'}", "flush_interval_s": 0.05},
    }


def wait_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the gateway exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"the gateway did not answer /health within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


def login(page: Page, base_url: str, token: str) -> None:
    page.goto(base_url + "/ui/login")
    page.get_by_test_id("token-input").fill(token)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(lambda url: "/ui/login" not in url)


def shot(page: Page, name: str) -> Path:
    """A full-page screenshot in the run's artifacts."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
