"""The shipped example plugin, installed for real (pip, into a folder on PYTHONPATH): a gateway
started with it marks every /v1/messages response with ``x-example-plugin: 1``, one started without
it does not, and ``ccrouter plugins list`` shows it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

import ccrouter
from ccrouter.testing import FakeUpstream, Fault, Reply

EXAMPLE = Path(__file__).parents[2] / "examples/plugins/ccrouter-example-header"
SOURCE = str(Path(ccrouter.__file__).parents[1])
BODY = {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install`` of the example into a folder of its own: its wheel is built by its declared
    backend (hatchling, which pip provides to the build as it does for ccrouter itself)."""
    target = tmp_path_factory.mktemp("site")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target)]
    subprocess.run([*command, str(EXAMPLE)], check=True, timeout=300, capture_output=True)
    return target


def _env(*paths: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*paths, SOURCE]), "COLUMNS": "250"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def _gateway(config: Path, env: dict[str, str]) -> AsyncIterator[str]:
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ccrouter.cli.main", "serve", "--config", str(config), "--port", str(port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(url + "/health") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("the gateway never answered /health")
        yield url
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 15)


async def _marks(url: str, fake: FakeUpstream) -> list[tuple[int, str | None]]:
    """(status, x-example-plugin) of a plain, a streamed, an upstream-failed and a malformed request."""
    fake.script(Reply(text="hello"), Reply(text="streamed"), Fault("status", status=500))
    out: list[tuple[int, str | None]] = []
    async with aiohttp.ClientSession() as session:
        for kwargs in ({"json": BODY}, {"json": {**BODY, "stream": True}}, {"json": BODY}, {"data": b"{"}):
            async with session.post(url + "/v1/messages", **kwargs) as response:
                await response.read()
                out.append((response.status, response.headers.get("x-example-plugin")))
    return out


def _config(tmp_path: Path, fake: FakeUpstream) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        "providers:\n"
        f"  - {{name: up, type: anthropic, base_url: '{fake.url}', api_key: sk-test,"
        " models: [claude-sonnet-4-6]}\n"
        "router: {default: 'up,claude-sonnet-4-6'}\n",
        encoding="utf-8",
    )
    return path


async def test_installed_it_marks_every_messages_response(
    installed: Path, tmp_path: Path, fake: FakeUpstream
) -> None:
    async with _gateway(_config(tmp_path, fake), _env(str(installed))) as url:
        assert await _marks(url, fake) == [(200, "1"), (200, "1"), (500, "1"), (400, "1")]


async def test_not_installed_no_response_has_the_header(tmp_path: Path, fake: FakeUpstream) -> None:
    async with _gateway(_config(tmp_path, fake), _env()) as url:
        assert await _marks(url, fake) == [(200, None), (200, None), (500, None), (400, None)]


def test_plugins_list_shows_it_with_its_version_and_hook(installed: Path) -> None:
    command = [sys.executable, "-m", "ccrouter.cli.main", "plugins", "list"]
    listed = subprocess.run(command, env=_env(str(installed)), capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if "example-header" in line)
    # Two lines a plugin: its name and hooks, then its origin and version and what it registers.
    assert lines[at].split()[:2] == ["example-header", "register_response_hooks"]
    assert lines[at + 1].split()[:2] == ["installed", "0.1.0"]
