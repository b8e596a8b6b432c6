"""`ccrouter serve --workers N`: N processes share one port, and a signal stops them all."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

import ccrouter
from ccrouter.config_file import write_default_config


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


async def test_two_workers_serve_one_port_and_stop_together(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    # The simulated provider.
    await asyncio.to_thread(write_default_config, config, {}, ollama_probe=lambda: False)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(ccrouter.__file__).parents[1])}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ccrouter.cli.main", "serve", "--config", str(config),
        "--port", str(port), "--workers", "2",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(url + "/health") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("the workers never answered /health")
            workers = _children(process.pid)
            assert len(workers) == 2
            body = {"model": "m", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
            # A new connection each time, so the kernel spreads them over both listening workers.
            for _ in range(20):
                async with (
                    aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as fresh,
                    fresh.post(url + "/v1/messages", json=body) as response,
                ):
                    assert response.status == 200
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
        assert not any(_alive(pid) for pid in workers)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
