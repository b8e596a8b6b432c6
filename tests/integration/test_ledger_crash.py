"""The gateway killed with SIGKILL under load, then restarted: every request that completed more than a
second before the kill is in the ledger (the writer commits every ``flush_interval_s``)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import BinaryIO

import aiohttp
import pytest
from process_support import free_port, start_gateway

from ccrouter.config_file import dump_yaml, load_settings
from ccrouter.store import make_store
from ccrouter.store.sqlite import SQLiteStore
from ccrouter.testing import FakeUpstream

GRACE_S = 1.0
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


async def load(url: str, done: list[tuple[float, str]], stop: asyncio.Event, worker: int) -> None:
    body = {"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    n = 0
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            n += 1
            request_id = f"crash-{worker}-{n}"
            try:
                async with session.post(
                    url + "/v1/messages", json=body, headers={"x-request-id": request_id}
                ) as response:
                    await response.read()
                    if response.status == 200:
                        done.append((time.monotonic(), request_id))
            except aiohttp.ClientError:
                return  # the gateway is gone


async def test_sigkill_loses_nothing_committed(tmp_path: Path, fake: FakeUpstream) -> None:
    db = tmp_path / "usage.db"  # the default ledger: next to the config file
    config = tmp_path / "config.yaml"
    document = {
        "providers": [
            {"name": "up", "type": "anthropic", "base_url": fake.url, "api_key": "sk-x", "models": ["m"]}
        ],
        "router": {"default": "up,m"},
        "store": {"flush_interval_s": 0.05},
    }
    await asyncio.to_thread(config.write_text, dump_yaml(document))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "gateway.log").open("ab") as log:
        await _kill_and_check(config, db, port, url, log)


async def _kill_and_check(config: Path, db: Path, port: int, url: str, log: BinaryIO) -> None:
    process = await start_gateway(config, port, log)
    done: list[tuple[float, str]] = []
    stop = asyncio.Event()
    workers = [asyncio.create_task(load(url, done, stop, i)) for i in range(8)]
    await asyncio.sleep(GRACE_S + 1.0)
    killed_at = time.monotonic()
    process.send_signal(signal.SIGKILL)
    await process.wait()
    stop.set()
    await asyncio.gather(*workers)
    settled = {request_id for finished, request_id in done if finished < killed_at - GRACE_S}
    assert len(settled) > 20, "too little load to prove anything"

    # Restarted on the same file: SQLite recovers the WAL, the gateway serves again.
    process = await start_gateway(config, port, log)
    try:
        store = SQLiteStore(db)
        await store.open()
        try:
            ledger = {record.request_id for record in await store.records()}
        finally:
            await store.close()
    finally:
        process.terminate()
        await process.wait()
    assert settled - ledger == set()


async def durable_load(url: str, done: list[str], stop: asyncio.Event, worker: int) -> None:
    """Like ``load``, half the requests streamed; a stream counts as completed once the client has
    read its ``message_stop``."""
    n = 0
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            n += 1
            request_id = f"durable-{worker}-{n}"
            stream = n % 2 == 0
            body = {
                "model": "m",
                "max_tokens": 50,
                "stream": stream,
                "messages": [{"role": "user", "content": "hi"}],
            }
            try:
                async with session.post(
                    url + "/v1/messages", json=body, headers={"x-request-id": request_id}
                ) as response:
                    if not stream:
                        await response.read()
                        if response.status == 200:
                            done.append(request_id)
                        continue
                    async for line in response.content:
                        if line.startswith(b"event: message_stop"):
                            done.append(request_id)  # seen, whatever happens to the rest
            except aiohttp.ClientError:
                return  # the gateway is gone


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_with_store_durable_sigkill_loses_no_completed_request(
    tmp_path: Path, fake: FakeUpstream, backend: str
) -> None:
    store: dict[str, object] = {"flush_interval_s": 10.0, "durable": True}  # only the durable commits write
    if backend == "postgres":
        store |= {"url": PG_URL, "schema_name": f"durable_{os.getpid()}_{int(time.time())}"}
    config = tmp_path / "config.yaml"
    document = {
        "providers": [
            {"name": "up", "type": "anthropic", "base_url": fake.url, "api_key": "sk-x", "models": ["m"]}
        ],
        "router": {"default": "up,m"},
        "store": store,
    }
    await asyncio.to_thread(config.write_text, dump_yaml(document))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "gateway.log").open("ab") as log:
        process = await start_gateway(config, port, log)
        done: list[str] = []
        stop = asyncio.Event()
        workers = [asyncio.create_task(durable_load(url, done, stop, i)) for i in range(8)]
        await asyncio.sleep(1.5)
        process.send_signal(signal.SIGKILL)
        await process.wait()
        stop.set()
        await asyncio.gather(*workers)
    assert len(done) > 20, "too little load to prove anything"
    settings = load_settings(config)
    ledger = make_store(settings.store, tmp_path)
    await ledger.open()
    try:
        recorded = {record.request_id for record in await ledger.records()}
    finally:
        await ledger.close()
    assert set(done) - recorded == set()
