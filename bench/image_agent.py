"""The image agent's cost on the hot path: plan + complete of the Claude-Code-sized request (no
images) through the dispatcher and a simulated provider, without and with ``router.image_agent``.

    .venv/bin/python bench/image_agent.py

The table shows the median microseconds per request over ``REPEAT`` requests after a warm-up.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from payloads import _request

from ccrouter.codecs.anthropic import codec
from ccrouter.config import Settings
from ccrouter.exchange import Exchange
from ccrouter.plugins import Registry, load_plugins
from ccrouter.services import build_services, close_services, close_stores

REPEAT = 2000


def settings(image_agent: bool, folder: str) -> Settings:
    router = {"default": "sim,sim-text"}
    if image_agent:
        router["image_agent"] = "vis,sim-vision"
    return Settings.model_validate(
        {
            "providers": [
                {"name": "sim", "type": "simulated", "models": [{"name": "sim-text", "vision": False}]},
                {"name": "vis", "type": "simulated", "models": [{"name": "sim-vision", "vision": True}]},
            ],
            "router": router,
            "routing": {"auto_fallback": "off"},
            "alerts": {"enabled": False},
            "logging": {"requests": False},
            "store": {"url": f"sqlite:///{folder}/usage.db"},
        }
    )


async def measure(image_agent: bool) -> float:
    with tempfile.TemporaryDirectory() as folder:
        registry = Registry.build(load_plugins(entry_points=False))
        services = await build_services(
            settings(image_agent, folder), registry, config_dir=Path(folder), simulated=False, version="b"
        )
        request = codec.decode_request(_request(False))
        times = []
        for i in range(REPEAT + 200):
            exchange = Exchange(request_id=f"r{i}", endpoint="messages")
            started = time.perf_counter()
            plan = await services.dispatcher.plan(request, {}, exchange)
            await services.dispatcher.complete(plan)
            if i >= 200:
                times.append(time.perf_counter() - started)
        await close_services(services)
        await close_stores(services)
        return statistics.median(times) * 1e6


async def main() -> None:
    for label, on in (("image_agent unset", False), ("image_agent set, no images", True)):
        print(f"{label:30} {await measure(on):8.1f} us per plan+complete")


if __name__ == "__main__":
    asyncio.run(main())
