"""A burst of multi-megabyte bodies leaves the gateway's memory where it was (issue 11, "Memory"): the
caches are bounded in bytes, keep nothing from a huge part, and the heap those bodies grew is given
back. Measured on a real ``ccrouter serve`` process, from /proc."""

from __future__ import annotations

import asyncio
import io
import os
import random
import socket
import string
import sys
from pathlib import Path

import aiohttp
import orjson
import pytest

import ccrouter
from ccrouter.testing import FakeUpstream

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _body(seed: int, size: int, parts: int = 40) -> bytes:
    """A conversation of ``parts`` messages of distinct prose, ``size`` bytes in all."""
    rng = random.Random(seed)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(400)]
    messages = []
    for index in range(parts):
        text = " ".join(rng.choices(words, k=size // parts // 6))
        messages.append({"role": "user" if index % 2 == 0 else "assistant", "content": text})
    messages.append({"role": "user", "content": "go on"})
    return orjson.dumps({"model": "claude-sonnet-4-6", "max_tokens": 50, "messages": messages})


async def _serve(config: Path, port: int) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(Path(ccrouter.__file__).parents[1])}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ccrouter.cli.main", "serve", "--config", str(config), "--port", str(port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip


@pytest.mark.timeout(120)
@pytest.mark.parametrize("upstream", ["fake", "simulated"])
async def test_rss_after_a_burst_of_large_bodies_returns_near_where_it_was(
    fake: FakeUpstream, tmp_path: Path, upstream: str
) -> None:
    """Through a fake upstream, and through the built-in simulated provider (its in-process fake
    used to keep every request it answered)."""
    config = tmp_path / "config.yaml"
    provider = (
        f"{{name: up, type: openai, base_url: '{fake.url}/v1', api_key: sk-test, models: [gpt-test]}}"
        if upstream == "fake"
        else "{name: up, type: simulated, models: [gpt-test]}"
    )
    document = f"providers:\n  - {provider}\nrouter:\n  default: up,gpt-test\n"
    await asyncio.to_thread(config.write_text, document)
    port = _free_port()
    process = await _serve(config, port)
    url = f"http://127.0.0.1:{port}"
    bodies = [_body(seed, random.Random(seed).randint(3_000_000, 5_000_000)) for seed in range(20)]
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
            small = orjson.dumps(
                {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}]}
            )
            for _ in range(20):  # warm: the tokenizer, the pools, the first allocations
                async with session.post(url + "/v1/messages", data=small) as response:
                    assert response.status == 200
            await asyncio.sleep(1.5)
            before = _rss_mb(process.pid)
            for body in bodies:
                async with session.post(url + "/v1/messages", data=io.BytesIO(body)) as response:
                    assert response.status == 200, await response.read()
                fake.reset()  # the fake records what it got; the gateway is what is measured
            peak = _rss_mb(process.pid)
            await asyncio.sleep(2.5)  # settle: the heap is trimmed a second after the last large body
            after = _rss_mb(process.pid)
        assert after - before < 50, (
            f"RSS {before:.0f} MB before, {peak:.0f} MB at the end, {after:.0f} MB after"
        )
    finally:
        process.terminate()
        await process.wait()
