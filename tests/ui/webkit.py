"""WebKit (Safari's engine) for the dashboard's tests: Debian's WebKitGTK MiniBrowser, driven by its
WebDriver (``WebKitWebDriver``, package webkit2gtk-driver) over the classic W3C WebDriver protocol, on
a virtual display (Xvfb), since WebKitGTK cannot start without one. ``WebKit.launch()`` starts both on
free display and port numbers; the client has the same few commands as ``firefox.Firefox``.

Classic WebDriver has no log events, so a script error shows as a page that never reaches the state
a test waits for, not as a message."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from driven import Driven

DRIVER = os.environ.get("CCROUTER_TEST_WEBKIT_DRIVER", "/usr/bin/WebKitWebDriver")
MINIBROWSER = os.environ.get(
    "CCROUTER_TEST_WEBKIT_BROWSER", "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser"
)
XVFB = "/usr/bin/Xvfb"
_START_S = 30.0
_COMMAND_S = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class WebDriverError(Exception):
    pass


class WebKit(Driven):
    """One WebKitGTK MiniBrowser (on its own Xvfb display) behind WebKitWebDriver."""

    retry = WebDriverError

    def __init__(self, xvfb: subprocess.Popen[bytes], driver: subprocess.Popen[bytes], url: str) -> None:
        self.xvfb = xvfb
        self.driver = driver
        self.url = url
        # Kept for the same shape as Firefox's client; classic WebDriver reports no script errors.
        self.errors: list[str] = []
        self._http: aiohttp.ClientSession | None = None
        self._session = ""

    @classmethod
    def launch(cls) -> WebKit:
        """Starts Xvfb and the driver (blocking: call it outside the event loop)."""
        for path, package in (
            (DRIVER, "webkit2gtk-driver"),
            (MINIBROWSER, "webkit2gtk-driver"),
            (XVFB, "xvfb"),
        ):
            if not Path(path).exists():
                raise FileNotFoundError(
                    f"{path} is missing: apt-get install -y --no-install-recommends {package}"
                )
        # -displayfd: Xvfb picks a free display itself and writes its number to the pipe.
        read, write = os.pipe()
        xvfb = subprocess.Popen(
            [XVFB, "-displayfd", str(write), "-screen", "0", "1360x900x24", "-nolisten", "tcp"],
            pass_fds=(write,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(write)
        with os.fdopen(read) as pipe:
            display = pipe.readline().strip()
        if not display:
            xvfb.kill()
            xvfb.wait()
            raise RuntimeError("Xvfb did not start")
        port = _free_port()
        log = Path(tempfile.mkstemp(prefix="ccr-webkit-", suffix=".log")[1])
        with log.open("wb") as output:
            driver = subprocess.Popen(
                [DRIVER, f"--port={port}", "--host=127.0.0.1"],
                stdout=output,
                stderr=subprocess.STDOUT,
                # LANG=C would make navigator.language "C", which no Intl API takes (uPlot fails to load).
                env={**os.environ, "DISPLAY": f":{display}", "LANG": "en_US.UTF-8", "LANGUAGE": "en_US"},
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + _START_S
        while time.monotonic() < deadline and driver.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return cls(xvfb, driver, url)
            except OSError:
                time.sleep(0.1)
        for process in (driver, xvfb):
            process.kill()
            process.wait()
        raise RuntimeError(f"WebKitWebDriver did not listen within {_START_S} s: {log.read_text()[-2000:]}")

    def close(self) -> None:
        for process in (self.driver, self.xvfb):
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    # -- the protocol -------------------------------------------------------------------------------

    async def __aenter__(self) -> WebKit:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=_COMMAND_S))
        options = {"binary": MINIBROWSER, "args": ["--automation"]}
        answer = await self._call(
            "POST", "/session", {"capabilities": {"alwaysMatch": {"webkitgtk:browserOptions": options}}}
        )
        self._session = answer["sessionId"]
        await self._call("POST", f"/session/{self._session}/window/rect", {"width": 1360, "height": 900})
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            if self._session:
                with contextlib.suppress(WebDriverError, aiohttp.ClientError, TimeoutError):
                    await self._call("DELETE", f"/session/{self._session}", None)
            await self._http.close()

    async def _call(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        assert self._http is not None
        async with self._http.request(method, self.url + path, json=body) as response:
            data = await response.json(content_type=None)
        value = data.get("value") if isinstance(data, dict) else None
        if response.status >= 400:
            raise WebDriverError(f"{method} {path}: {response.status} {value}")
        return value

    async def goto(self, url: str) -> None:
        await self._call("POST", f"/session/{self._session}/url", {"url": url})

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (awaited when a promise)."""
        script = f"return (async () => ({expression}))();"
        return await self._call(
            "POST", f"/session/{self._session}/execute/sync", {"script": script, "args": []}
        )

    async def screenshot(self, path: Path) -> None:
        data = await self._call("GET", f"/session/{self._session}/screenshot", None)
        path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(path.write_bytes, base64.b64decode(data))
