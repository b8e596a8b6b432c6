"""Several ``ccrouter serve`` processes behind a real nginx (Debian's) on loopback, sharing a real Redis
(a key prefix of their own) and a real PostgreSQL (a schema of their own): issue 17's proving ground.

nginx balances round-robin and, when an instance does not answer (connection refused: killed or
restarting), sends the request to the next one (``proxy_next_upstream error``, POSTs included); a
draining instance's 529 goes back to the client, which retries it as Claude Code does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import redis.asyncio as redis
from process_support import free_port, start_gateway
from redis import __version__ as redis_version
from redis.driver_info import DriverInfo

from ccrouter.config_file import dump_yaml

__all__ = ["PG_URL", "REDIS_URL", "Cluster", "require_nginx"]

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
NGINX = os.environ.get("CCROUTER_TEST_NGINX", "/usr/sbin/nginx")

_NGINX_CONF = """
worker_processes 1;
daemon off;
user root;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream gateways {{
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 64m;
        location / {{
            proxy_pass http://gateways;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 120s;
            proxy_connect_timeout 2s;
            proxy_next_upstream error timeout non_idempotent;
            proxy_next_upstream_tries 3;
        }}
    }}
}}
"""


def require_nginx() -> None:
    if not os.access(NGINX, os.X_OK):
        pytest.fail(f"nginx is needed at {NGINX}: apt-get install --no-install-recommends nginx")


class Cluster:
    """``count`` gateways with one configuration (``document`` plus the shared state and store this
    cluster owns) behind nginx at ``url``; ``kill``/``terminate``/``start`` one by index."""

    def __init__(self, tmp_path: Path, document: dict[str, Any], count: int = 3) -> None:
        """Call ``require_nginx`` first, off the event loop (a sync fixture)."""
        self.dir = tmp_path
        self.prefix = f"ccr-cluster-{uuid.uuid4().hex[:10]}"
        self.schema = f"cluster_{uuid.uuid4().hex[:10]}"
        self.document = {
            **document,
            "state": {"redis_url": REDIS_URL, "key_prefix": self.prefix, **document.get("state", {})},
            "store": {"url": PG_URL, "schema_name": self.schema, **document.get("store", {})},
        }
        self.ports = [free_port() for _ in range(count)]
        self.processes: list[asyncio.subprocess.Process | None] = [None] * count
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = tmp_path / "config.yaml"
        self._nginx: asyncio.subprocess.Process | None = None

    def gateway_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"

    async def __aenter__(self) -> Cluster:
        await asyncio.to_thread(self.config.write_text, dump_yaml(self.document))
        for index in range(len(self.ports)):
            await self.start(index)
        await self._start_nginx()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for index in range(len(self.ports)):
            await self.kill(index)
        if self._nginx is not None and self._nginx.returncode is None:
            self._nginx.terminate()
            await self._nginx.wait()
        await self._drop_state()

    async def start(self, index: int) -> None:
        log = (self.dir / f"gateway-{index}.log").open("ab")
        try:
            self.processes[index] = await start_gateway(self.config, self.ports[index], log)
        finally:
            log.close()

    async def terminate(self, index: int) -> int:
        """SIGTERM (the drain), then its exit status (within a minute)."""
        process = self.processes[index]
        assert process is not None
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 60)
        self.processes[index] = None
        return code

    async def kill(self, index: int) -> None:
        process = self.processes[index]
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGKILL)
            await process.wait()
        self.processes[index] = None

    async def log_text(self, index: int) -> str:
        return await asyncio.to_thread((self.dir / f"gateway-{index}.log").read_text, errors="replace")

    async def _start_nginx(self) -> None:
        nginx_dir = self.dir / "nginx"
        await asyncio.to_thread(nginx_dir.mkdir, exist_ok=True)
        servers = "\n".join(
            f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=2s;" for port in self.ports
        )
        conf = nginx_dir / "nginx.conf"
        text = _NGINX_CONF.format(dir=nginx_dir, servers=servers, port=self.port)
        await asyncio.to_thread(conf.write_text, text)
        self._nginx = await asyncio.create_subprocess_exec(
            NGINX, "-p", str(nginx_dir), "-c", str(conf), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 10
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline and self._nginx.returncode is None:
                try:
                    async with session.get(self.url + "/health") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
        error_log = nginx_dir / "error.log"
        detail = await asyncio.to_thread(error_log.read_text) if error_log.exists() else "no error log"
        pytest.fail(f"nginx did not start: {detail[-2000:]}")

    async def _drop_state(self) -> None:
        conn = await asyncpg.connect(PG_URL)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        finally:
            await conn.close()
        client = redis.from_url(REDIS_URL, driver_info=DriverInfo(lib_version=redis_version))
        try:
            async for name in client.scan_iter(match=f"{self.prefix}:*"):
                await client.delete(name)
        finally:
            await client.aclose()
