"""A ``ccrouter serve`` child process on a free port, for the tests that signal or kill the gateway."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import BinaryIO

import aiohttp
import pytest

__all__ = ["free_port", "start_gateway"]

START_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start_gateway(config: Path, port: int, log: BinaryIO, *extra: str) -> asyncio.subprocess.Process:
    """``ccrouter serve --config config --port port [extra]``, its output to ``log``; returns once
    ``/health`` answers 200 (fails the test if it does not within ``START_TIMEOUT_S``)."""
    process = await asyncio.create_subprocess_exec(
        *[
            sys.executable,
            "-m",
            "ccrouter.cli.main",
            "serve",
            "--config",
            str(config),
            "--port",
            str(port),
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1"},
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline and process.returncode is None:
            try:
                async with session.get(f"http://127.0.0.1:{port}/health") as response:
                    if response.status == 200:
                        return process
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    if process.returncode is None:
        process.kill()
    await process.wait()
    pytest.fail(f"the gateway did not start (see {log.name})")
