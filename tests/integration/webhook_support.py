"""A webhook receiver on loopback, for the alert tests."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

__all__ = ["Receiver"]


class Receiver:
    """A webhook receiver on loopback: records each JSON body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self.server = TestServer(app, host="127.0.0.1", port=0)

    async def _hook(self, request: web.Request) -> web.Response:
        self.bodies.append(orjson.loads(await request.read()))
        return web.Response(status=200)

    @property
    def url(self) -> str:
        return str(self.server.make_url("/hook"))

    def transitions(self) -> list[tuple[str, str]]:
        return [(body["alert"], body["status"]) for body in self.bodies]

    async def wait_for(self, count: int, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.bodies) < count:
            if time.monotonic() > deadline:
                pytest.fail(f"expected {count} webhooks, got {self.transitions()}")
            await asyncio.sleep(0.02)
