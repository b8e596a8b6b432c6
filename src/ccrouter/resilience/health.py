"""Active health checks (off by default: each check is a paid call on most APIs).

Passive health comes from traffic (``LiveState.on_success`` / ``on_failure``). With
``routing.health_checks: true``, ``HealthChecker`` also sends every provider's first listed model a
one-token request each ``health_check_interval_s``, so a provider that traffic avoids (breaker open,
cooling down) is seen to recover without risking a client's request. With shared state, one instance
checks for all (it holds a lease, renewed each round; another takes over within 1.5 intervals), and
the others read its results in the merged statistics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping

from ccrouter.config import Settings
from ccrouter.errors import CCRouterError
from ccrouter.messages import Message, MessagesRequest, TextBlock
from ccrouter.providers.base import Provider
from ccrouter.resilience.live import LiveState

__all__ = ["HealthChecker", "probe_request"]

log = logging.getLogger("ccrouter.health")


def probe_request(model: str) -> MessagesRequest:
    """The cheapest request a model answers: one short user turn, one output token."""
    return MessagesRequest(
        model=model, max_tokens=1, messages=[Message(role="user", content=[TextBlock(text="ping")])]
    )


class HealthChecker:
    def __init__(
        self, settings: Settings, pools: Mapping[str, Mapping[str, Provider]], live: LiveState
    ) -> None:
        self._settings = settings
        self._pools = pools
        self._live = live
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ccrouter-health-checks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        interval = self._settings.routing.health_check_interval_s
        while True:
            shared = self._live.shared
            if shared is None or await shared.lease("health-checks", 1.5 * interval):
                await self.check_all()
            await asyncio.sleep(interval)

    async def check_all(self) -> None:
        checks = [
            self.check(config.name, config.models[0].name, cred, provider)
            for config in self._settings.providers
            if config.models and config.type != "simulated"
            for cred, provider in self._pools.get(config.name, {}).items()
        ]
        await asyncio.gather(*checks)

    async def check(self, name: str, model: str, cred: str, provider: Provider) -> bool:
        started = time.perf_counter()
        self._live.stats(name, model, cred).in_flight += 1
        try:
            response = await provider.complete(probe_request(model), model)
        except CCRouterError as exc:
            await self._live.on_failure(name, model, cred, exc, time.perf_counter() - started)
            log.info("health check %s,%s (%s) failed: %s", name, model, cred, exc.message)
            return False
        await self._live.on_success(name, model, cred, time.perf_counter() - started, response.usage)
        return True
