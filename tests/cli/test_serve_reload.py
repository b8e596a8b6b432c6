"""`ccrouter serve` reloads its configuration on SIGHUP (it used to end the process) and, unless
``--no-watch``, when the file changes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

import ccrouter

BODY = {"model": "sim-1", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _config(default: str) -> dict[str, Any]:
    return {
        "providers": [
            {"name": "first", "type": "simulated", "models": ["sim-1"]},
            {"name": "second", "type": "simulated", "models": ["sim-1"]},
        ],
        "router": {"default": f"{default},sim-1"},
        "alerts": {"enabled": False},
    }


async def _provider(session: aiohttp.ClientSession, url: str) -> str:
    async with session.post(url + "/v1/messages", json=BODY) as response:
        assert response.status == 200
        return response.headers["x-ccrouter-provider"]


async def test_sighup_reloads_the_configuration(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    await asyncio.to_thread(config.write_text, yaml.safe_dump(_config("first")))
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(ccrouter.__file__).parents[1])}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ccrouter.cli.main", "serve", "--config", str(config),
        "--port", str(port), "--no-watch",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(150):
                try:
                    async with session.get(url + "/health") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("the gateway never answered /health")
            assert await _provider(session, url) == "first"
            await asyncio.to_thread(config.write_text, yaml.safe_dump(_config("second")))
            await asyncio.sleep(1.0)
            assert await _provider(session, url) == "first"  # --no-watch: the edit alone does nothing
            process.send_signal(signal.SIGHUP)
            for _ in range(50):
                if await _provider(session, url) == "second":
                    break
                await asyncio.sleep(0.1)
            else:
                pytest.fail("SIGHUP did not reload the configuration")
            await asyncio.to_thread(config.write_text, "router: {default: nowhere,sim-1}\n")
            process.send_signal(signal.SIGHUP)  # an invalid file: refused, the gateway serves on
            await asyncio.sleep(1.0)
            assert await _provider(session, url) == "second"
        assert process.returncode is None
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
        assert process.stderr is not None
        log = (await process.stderr.read()).decode()
        assert "configuration reloaded" in log
        assert "configuration reload refused" in log
        assert "providers: required key is missing" in log
    finally:
        if process.returncode is None:
            process.kill()
