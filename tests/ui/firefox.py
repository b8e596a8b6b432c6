"""Firefox for the dashboard's tests, driven over WebDriver BiDi (the W3C protocol Firefox speaks
natively: no geckodriver, which Debian does not package, and no Playwright build of Firefox, which
cannot be downloaded here). ``Firefox.launch()`` starts Debian's ``firefox-esr`` headless with a fresh
profile that reaches nothing but loopback; the client has the few commands the tests need."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from driven import Driven

FIREFOX = os.environ.get("CCROUTER_TEST_FIREFOX", "/usr/bin/firefox-esr")
_LISTENING = re.compile(rb"WebDriver BiDi listening on (ws://\S+)")
_START_S = 30.0
_COMMAND_S = 20.0

# Everything Firefox would fetch by itself is off, and every non-loopback address goes to a proxy
# that does not exist: a test never touches the internet.
_PREFS = {
    "app.normandy.enabled": False,
    "app.update.enabled": False,
    "app.update.auto": False,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.newtabpage.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "extensions.update.enabled": False,
    "messaging-system.rsexperimentloader.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "services.settings.server": "http://127.0.0.1:9/",
    "toolkit.telemetry.enabled": False,
    "network.proxy.type": 1,
    "network.proxy.http": "127.0.0.1",
    "network.proxy.http_port": 9,
    "network.proxy.ssl": "127.0.0.1",
    "network.proxy.ssl_port": 9,
    "network.proxy.no_proxies_on": "127.0.0.1,localhost",
}


def _user_js() -> str:
    def value(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        return f'"{v}"'

    return "".join(f'user_pref("{name}", {value(v)});\n' for name, v in _PREFS.items())


class BidiError(Exception):
    pass


class Firefox(Driven):
    """One headless Firefox and its BiDi session, on a single browsing context."""

    retry = BidiError

    def __init__(self, process: subprocess.Popen[bytes], profile: Path, url: str) -> None:
        self.process = process
        self.profile = profile
        self.url = url
        self.errors: list[str] = []
        self._ids = 0
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.context = ""

    @classmethod
    def launch(cls) -> Firefox:
        """Starts Firefox (blocking: call it outside the event loop) and waits for its BiDi address."""
        if not Path(FIREFOX).exists():
            raise FileNotFoundError(
                f"Firefox is not at {FIREFOX}: apt-get install -y firefox-esr (or set CCROUTER_TEST_FIREFOX)"
            )
        profile = Path(tempfile.mkdtemp(prefix="ccr-firefox-"))
        (profile / "user.js").write_text(_user_js())
        log = profile / "firefox.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [
                    FIREFOX,
                    "--headless",
                    "--no-remote",
                    "--profile",
                    str(profile),
                    "--remote-debugging-port",
                    "0",
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
                env={**os.environ, "MOZ_CRASHREPORTER_DISABLE": "1"},
            )
        deadline = time.monotonic() + _START_S
        while time.monotonic() < deadline and process.poll() is None:
            match = _LISTENING.search(log.read_bytes())
            if match:
                return cls(process, profile, match.group(1).decode() + "/session")
            time.sleep(0.1)
        seen = log.read_bytes()[-2000:]
        process.kill()
        process.wait()
        shutil.rmtree(profile, ignore_errors=True)
        raise RuntimeError(f"Firefox did not open WebDriver BiDi within {_START_S} s:\n{seen!r}")

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    # -- the protocol -------------------------------------------------------------------------------

    async def __aenter__(self) -> Firefox:
        self._http = aiohttp.ClientSession()
        self._ws = await self._http.ws_connect(self.url, max_msg_size=64 * 1024 * 1024)
        await self.send("session.new", {"capabilities": {}})
        await self.send("session.subscribe", {"events": ["log.entryAdded"]})
        tree = await self.send("browsingContext.getTree", {})
        self.context = tree["contexts"][0]["context"]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._ws is not None:
            with contextlib.suppress(BidiError, TimeoutError, aiohttp.ClientError):
                await asyncio.wait_for(self.send("session.end", {}), 5)
            await self._ws.close()
        if self._http is not None:
            await self._http.close()

    async def send(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self._ws is not None
        self._ids += 1
        ident = self._ids
        await self._ws.send_json({"id": ident, "method": method, "params": params})
        async with asyncio.timeout(_COMMAND_S):
            while True:
                message = await self._ws.receive_json()
                if message.get("type") == "event":
                    self._event(message)
                    continue
                if message.get("id") != ident:
                    continue
                if message.get("type") == "error":
                    raise BidiError(f"{method}: {message.get('error')}: {message.get('message')}")
                result: dict[str, Any] = message["result"]
                return result

    def _event(self, message: dict[str, Any]) -> None:
        params = message.get("params", {})
        if message.get("method") == "log.entryAdded" and params.get("level") == "error":
            self.errors.append(str(params.get("text")))

    async def goto(self, url: str) -> None:
        await self.send("browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"})

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (awaited when a promise), as a plain value."""
        answer = await self.send(
            "script.evaluate",
            {"expression": expression, "target": {"context": self.context}, "awaitPromise": True},
        )
        if answer.get("type") == "exception":
            raise BidiError(f"{expression[:80]}: {answer['exceptionDetails'].get('text')}")
        return _plain(answer["result"])

    async def screenshot(self, path: Path) -> None:
        answer = await self.send(
            "browsingContext.captureScreenshot", {"context": self.context, "origin": "document"}
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(path.write_bytes, base64.b64decode(answer["data"]))


def _plain(value: dict[str, Any]) -> Any:
    kind = value.get("type")
    if kind in ("string", "number", "boolean"):
        return value["value"]
    if kind in ("null", "undefined"):
        return None
    if kind == "array":
        return [_plain(item) for item in value.get("value", [])]
    if kind == "object":
        return {k if isinstance(k, str) else str(k): _plain(v) for k, v in value.get("value", [])}
    return value
